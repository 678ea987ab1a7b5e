"""The ``lake`` command (:mod:`.main`) and its sub-commands, one module each."""
