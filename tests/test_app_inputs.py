"""Every value the pages' widgets accept gives a page without Streamlit's error box (an uncaught exception, which
a public server shows redacted): each number field at its bounds, each choice of every short selector, and the
text fields that pages parse given what a visitor may type. Driven with AppTest on the tiny zoo of tests/conftest.py.
"""
from __future__ import annotations

import pytest
from apptest import PAGES, open_page

from core.attacks import WHITE_BOX
from core.corruptions.evaluation import IMAGE_SOURCES
from core.robustness import autoattack_budgets
from core.transfer import TRANSFER_ATTACKS
from ui.widgets import MAX_LIST

pytestmark = pytest.mark.usefixtures("cache_dir")  # its own cache and the tiny zoo (conftest.py)

# What an attacker typed into the eps list (issue 29), and other text that is not a list of budgets.
BAD_NUMBERS = ["nan", "inf", "-inf", "1e309", "2/0", "1/0.0", "-5", "abc", "0x10", "1/2/3", "💥", "__import__('os')",
               ", ".join(["0.1"] * (MAX_LIST + 1))]
SHORT = 12  # selectors with at most this many options are swept whole
LABELLED = {"cor_source": IMAGE_SOURCES, "gal_attack": WHITE_BOX, "sweep_attack": WHITE_BOX, "tr_attack": TRANSFER_ATTACKS}


def assert_no_error_box(at, what: str) -> None:
    assert not at.exception, (what, [e.value for e in at.exception])


@pytest.mark.parametrize("page", PAGES)
def test_every_number_field_at_its_bounds(page):
    at = open_page(page)
    bounds = {w.key: (w.min, w.max) for w in at.number_input if w.key}
    for key, limits in bounds.items():
        for value in limits:
            widgets = [w for w in at.number_input if w.key == key]
            if value is not None and widgets:  # a field that an earlier value hid is not there to set
                widgets[0].set_value(value).run()
                assert_no_error_box(at, f"{key}={value}")


def raw_options(widget) -> list:
    """The values a selector returns: its labels, or for one shown through a format_func, the values it labels
    (AppTest sets a value, not a label, and cannot read the values back from the page)."""
    if widget.value is None or widget.value in widget.options:  # None: nothing chosen yet (index=None)
        return list(widget.options)
    if widget.key.startswith("aa_budget_"):
        return list(autoattack_budgets(widget.key.removeprefix("aa_budget_")))
    assert widget.key in LABELLED, f"selector {widget.key} shows labels: add its values to LABELLED"
    return list(LABELLED[widget.key])


@pytest.mark.parametrize("page", PAGES)
def test_every_choice_of_every_short_selector(page):
    at = open_page(page)
    choices = {w.key: raw_options(w) for w in at.selectbox if w.key and len(w.options) <= SHORT}
    for key, options in choices.items():
        for option in options:
            widgets = [w for w in at.selectbox if w.key == key]
            if widgets:  # a selector that an earlier choice hid is not there to set
                widgets[0].set_value(option).run()
                assert_no_error_box(at, f"{key}={option}")


@pytest.mark.parametrize("text", BAD_NUMBERS)
def test_an_eps_list_that_is_not_one_gets_one_readable_line_and_the_rest_of_the_page(text):
    at = open_page("robustness")
    at.text_input(key="sweep_eps_pgd_l2").set_value(text).run()
    assert_no_error_box(at, text)
    (error,) = [e.value for e in at.error]
    assert error.startswith("Bad eps list: ") and "\n" not in error
    assert at.number_input(key="aa_steps") is not None  # the AutoAttack section below is drawn


def test_a_good_eps_list_with_fractions_and_spaces_is_read():
    at = open_page("robustness")
    at.text_input(key="sweep_eps_pgd_l2").set_value(" 0 ; 0.1  0.25/1 ").run()
    assert_no_error_box(at, "good list")
    assert not at.error
