"""The metadata store's roles: together they are the whole store, and the contract runs each.

``MetadataStore`` is the union of role protocols, and each service takes only the
roles it uses. mypy checks both backends against every role (the wiring returns
each backend as a ``MetadataStore``); these tests keep the split whole, and make
sure test_stores.py, whose ``metadata`` fixture runs every test against SQLite and
Redis, calls every method of every role.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Protocol

import pytest

from ministry.storage.protocols import MetadataStore

ROLES = [base for base in MetadataStore.__bases__ if base is not Protocol]


def _methods(role: type) -> set[str]:
    return {name for name, value in vars(role).items() if callable(value) and name[0] != "_"}


def _called_by_the_contract() -> set[str]:
    tree = ast.parse(Path(__file__).with_name("test_stores.py").read_text())
    return {
        node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    }


def test_every_method_of_the_store_is_in_exactly_one_role() -> None:
    assert len(ROLES) > 1
    assert _methods(MetadataStore) == set(), "a method of the store belongs in a role"
    seen: set[str] = set()
    for role in ROLES:
        assert _methods(role), f"{role.__name__} has no methods"
        assert _methods(role).isdisjoint(seen), f"{role.__name__} repeats another role's method"
        seen |= _methods(role)


@pytest.mark.parametrize("role", ROLES, ids=lambda role: role.__name__)
def test_the_contract_calls_every_method_of(role: type) -> None:
    assert _methods(role) - _called_by_the_contract() == set()
