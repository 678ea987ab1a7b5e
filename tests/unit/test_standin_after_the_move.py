"""The stand-in after the move into layered folders: a state saved before ``lake/`` was split into
``cli/`` and ``standin/`` still loads (its pickle names the stand-in's functions by their old module
paths, ``lake.state._new_key``), and the functions' service names come from their environment."""

from __future__ import annotations

import pickle

import pytest

from lake.standin import state


def saved_before_the_move(value: object) -> bytes:
    """``value`` pickled as a lake of before the move would have pickled it (protocol 0 names a
    function's module as text, so the old path can be written in)."""
    return pickle.dumps(value, protocol=0).replace(b"lake.standin.state", b"lake.state")


def test_a_state_naming_the_old_module_paths_loads_with_the_functions_of_the_new_ones() -> None:
    # GIVEN a saved state that names the key factory and setter by their old module
    body = saved_before_the_move({"factory": state._new_key, "setter": state._set_key_state})
    assert b"clake.state\n_new_key" in body
    with pytest.raises(ModuleNotFoundError):
        pickle.loads(body)  # what `lake up` did before: "the state file is damaged"
    # WHEN the stand-in loads it
    loaded = state._loads(body)
    # THEN the names resolve to where the functions live now
    assert loaded == {"factory": state._new_key, "setter": state._set_key_state}


def test_the_stand_ins_functions_get_their_service_names_from_the_environment_as_deployed() -> None:
    import topology
    from lake.standin.server import Endpoints

    # GIVEN the stand-in's endpoints (no server needed to name them)
    endpoints = Endpoints("http://127.0.0.1:1", "us-east-1", topology.DEFAULT, "q", "qa", "d", "da", "s")
    # THEN each function's environment names its Powertools service, as the stack's does
    assert endpoints.handler_env()[topology.ENV_POWERTOOLS_SERVICE_NAME] == topology.PROCESS_SERVICE
    assert endpoints.refresh_env()[topology.ENV_POWERTOOLS_SERVICE_NAME] == topology.REFRESH_SERVICE
