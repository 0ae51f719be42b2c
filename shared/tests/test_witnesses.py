"""The one rule for independent witnesses: senders linked by a shared independent source are one."""

from __future__ import annotations

from burgermelding_shared.witnesses import independent_witnesses


def test_installations_behind_one_address_are_each_a_witness_once_they_are_not_new() -> None:
    assert independent_witnesses((f"phone-{n}", None) for n in range(100)) == 100


def test_installations_new_from_one_address_are_one_witness() -> None:
    fresh = [(f"fresh-{n}", "address-x") for n in range(10)]
    assert independent_witnesses(fresh) == 1
    assert independent_witnesses([*fresh, ("old-phone", None), ("other-fresh", "address-y")]) == 3
    # The others a report is corroborated by leave out its own witness: the whole group new with it.
    assert independent_witnesses([*fresh, ("old-phone", None)], excluding="fresh-3") == 1
    assert independent_witnesses(fresh, excluding="fresh-0") == 0


def test_one_installation_is_one_witness_before_and_after_its_first_hour() -> None:
    # fresh-1 reported in its first hour (with its address) and later (as itself): still one with fresh-2.
    reports = [("fresh-1", "address-x"), ("fresh-2", "address-x"), ("fresh-1", None), ("fresh-2", None)]
    assert independent_witnesses(reports) == 1
    assert independent_witnesses([("phone", None), ("phone", None)]) == 1
    assert independent_witnesses([]) == 0
    assert independent_witnesses([("phone", None)], excluding="someone-else") == 1


def test_what_the_rule_does_not_see_by_design() -> None:
    """Said in the module: the rule makes a fake crowd wait, it does not make one impossible."""
    # Installations registered together and left past their first hour before they report: each its own.
    assert independent_witnesses((f"patient-{n}", None) for n in range(10)) == 10
    # Registered from one address just before and just after midnight: the day's pseudonyms differ.
    assert independent_witnesses([("before-midnight", "address-day-1"), ("after-midnight", "address-day-2")]) == 2
