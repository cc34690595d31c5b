"""Addresses are matched as the validator normalises them; the shortcut for
plain ASCII addresses (which skips the validator on every sign-in) must give
exactly what the validator would, for any text."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from portal.services.emails import normalize_email, valid_email

LOCAL = st.text(alphabet="aZ09._+-!#'~\"", min_size=0, max_size=12)
DOMAIN = st.text(alphabet="aZ09.-", min_size=0, max_size=16) | st.sampled_from(
    ["xn--bcher-kva.example", "XN--BCHER-KVA.example", "example.com", "b\u00fccher.example"]
)
SPACE = st.sampled_from(["", " ", "\t", "\n "])


def by_the_validator(raw: str) -> str:
    return valid_email(raw) or raw.strip().lower()


@settings(max_examples=500)
@given(SPACE, LOCAL, st.sampled_from(["@", "@@", ""]), DOMAIN, SPACE)
@example("", "Ada", "@", "Example.COM", " ")
@example("", "a..b", "@", "x.example", "")
@example("", "\u212a", "@", "x.example", "")  # a Kelvin sign lowercases to ASCII "k"
def test_an_address_is_normalised_as_the_validator_does(
    before: str, local: str, at: str, domain: str, after: str
) -> None:
    raw = before + local + at + domain + after

    assert normalize_email(raw) == by_the_validator(raw)


def test_an_internationalised_domain_is_stored_in_unicode() -> None:
    assert normalize_email(" Ada@XN--BCHER-KVA.example ") == "ada@bücher.example"
