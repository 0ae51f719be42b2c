"""State fields as data: each has a `Workflow`, the table of which state may follow which, checked wherever
the state changes (as Signalen's workflow table does). A move the table does not allow is a bug in our code,
not the caller's fault: it raises, the transaction rolls back, and nothing half-changed is stored."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Generic, TypeVar

S = TypeVar("S", bound=StrEnum)


class IllegalTransition(RuntimeError):
    pass


class Workflow(Generic[S]):
    def __init__(self, field: str, transitions: Mapping[S, Iterable[S]]) -> None:
        self.field = field
        self.transitions: dict[S, frozenset[S]] = {state: frozenset(after) for state, after in transitions.items()}
        unknown = {s for after in self.transitions.values() for s in after} - set(self.transitions)
        if unknown:  # every state is in the table, an end state with nothing after it
            raise ValueError(f"{field}: {sorted(unknown)} follow a state but have no row of their own")

    def allows(self, current: str, new: S) -> bool:
        """Staying in a state is no move; any other move must be in the table."""
        return current == new or new in self.transitions.get(self.state(current), frozenset())

    def move(self, current: str, new: S) -> S:
        if not self.allows(current, new):
            raise IllegalTransition(f"{self.field} cannot go from {current} to {new}")
        return new

    def state(self, value: str) -> S:
        for state in self.transitions:
            if state == value:
                return state
        raise IllegalTransition(f"{self.field} has no state {value!r}")

    def ends(self) -> set[S]:
        return {state for state, after in self.transitions.items() if not after}
