"""The commands the real Lambda base ships, and a check that a Dockerfile's ``RUN`` steps use only those.

``public.ecr.aws/lambda/python:3.12`` and later are Amazon Linux 2023 *minimal*: no findutils
(``find``, ``xargs``), no ``gzip``, no ``file``. A ``RUN`` step that calls
a command the base lacks stops ``docker build``, so ``cdk deploy`` fails, while a stand-in base with
more commands passes. Sources:

- aws/aws-lambda-base-images#196 ("Missing `find` command in `lambda/python:3.12` image", 2024-09):
  the python 3.12+ bases are AL2023 and ship without findutils; AWS's answer is ``dnf install``.
- amazonlinux/amazon-linux-2023#585 (2023-12, ``rpm -qa`` inside ``public.ecr.aws/lambda/python:3.12``):
  alternatives, bash, ca-certificates, coreutils-single, curl-minimal, gawk, glib2, glibc,
  gnupg2-minimal, grep, microdnf as ``dnf`` (microdnf-dnf), rpm and libraries. Packages there whose
  presence is not certain for every later base (sed, for one) are left out: this list only ever
  under-promises, so a step that passes here runs on the real base.
- the Lambda Python layer on top: ``/var/lang/bin/python3`` and ``pip`` (``LAMBDA_TASK_ROOT``,
  ``/lambda-entrypoint.sh``).

``make image-test`` removes every other command from its Debian stand-in (``base.py``), and
``tests/infra/test_lambda_image.py`` parses each ``RUN`` step with tree-sitter-bash and fails on a
command outside :data:`COMMANDS`.
"""

from __future__ import annotations

from collections.abc import Iterator


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: coreutils-single 8.32 (one multi-call binary; the same commands as coreutils).
COREUTILS = _words(
    """
    [ arch b2sum base32 base64 basename basenc cat chcon chgrp chmod chown chroot cksum comm cp csplit
    cut date dd df dir dircolors dirname du echo env expand expr factor false fmt fold groups head
    hostid id install join link ln logname ls md5sum mkdir mkfifo mknod mktemp mv nice nl nohup nproc
    numfmt od paste pathchk pinky pr printenv printf ptx pwd readlink realpath rm rmdir runcon seq
    sha1sum sha224sum sha256sum sha384sum sha512sum shred shuf sleep sort split stat stdbuf stty sum
    sync tac tail tee test timeout touch tr true truncate tsort tty uname unexpand uniq unlink users
    vdir wc who whoami yes
    """
)

#: Package -> the commands it puts on PATH, for the packages of #585 that have any.
PACKAGES: dict[str, frozenset[str]] = {
    "bash": frozenset({"bash", "sh"}),
    "coreutils-single": COREUTILS,
    "gawk": frozenset({"awk", "gawk"}),
    "grep": frozenset({"grep", "egrep", "fgrep"}),
    "curl-minimal": frozenset({"curl"}),
    "microdnf-dnf": frozenset({"dnf", "microdnf"}),
    "rpm": frozenset({"rpm"}),
    "alternatives": frozenset({"alternatives"}),
    "ca-certificates": frozenset({"update-ca-trust"}),
    "glibc": frozenset({"ldconfig"}),
    # The Lambda runtime layer (/var/lang), not an RPM.
    "lambda python runtime": frozenset({"python3", "python", "pip", "pip3"}),
}

#: Every command a ``RUN`` step may call.
COMMANDS: frozenset[str] = frozenset().union(*PACKAGES.values())

#: bash builtins and keywords a step may use (bash is the base's /bin/sh).
BUILTINS = _words(
    """
    : . [ break cd command continue echo eval exec exit export false local printf pwd read return set
    shift test trap true type umask unset wait
    """
)


class ForeignCommandError(Exception):
    """A RUN step calls a command the real base does not ship."""


def run_steps(dockerfile_text: str) -> list[str]:
    """The shell text of each ``RUN`` step (continuation lines joined, comments dropped)."""
    steps: list[str] = []
    current: list[str] | None = None
    for raw in dockerfile_text.splitlines():
        line = raw.strip()
        if current is None:
            if not line or line.startswith("#"):
                continue
            keyword, _, rest = line.partition(" ")
            if keyword.upper() != "RUN":
                continue
            current, line = [], rest
        elif line.startswith("#"):
            continue
        if line.endswith("\\"):
            current.append(line[:-1])
        else:
            current.append(line)
            steps.append(" ".join(current))
            current = None
    return steps


def commands(shell: str) -> Iterator[str]:
    """Every command name ``shell`` runs, in order (in pipelines, lists, loops, substitutions)."""
    import tree_sitter as ts
    import tree_sitter_bash

    tree = ts.Parser(ts.Language(tree_sitter_bash.language())).parse(shell.encode())
    if tree.root_node.has_error:
        raise ForeignCommandError(f"RUN step is not valid shell (tree-sitter-bash): {shell[:120]}")
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.type == "command":
            name = node.child_by_field_name("name")
            if name is not None and name.text is not None:
                yield name.text.decode()
        stack.extend(reversed(node.children))


def foreign_commands(dockerfile_text: str) -> list[str]:
    """The commands of the ``RUN`` steps that are neither bash builtins nor on the real base."""
    allowed = COMMANDS | BUILTINS
    return [name for step in run_steps(dockerfile_text) for name in commands(step) if name not in allowed]
