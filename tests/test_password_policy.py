"""The password policy: 12 to 128 characters, hard to guess (also for someone
who knows the account's details), no composition rules, any Unicode, compared
after NFKC normalisation."""

from __future__ import annotations

import unicodedata

import pytest

from portal.services import passwords
from portal.services.errors import ErrorCode, WeakPassword

# The app fixture configures cheap argon2 hashing for the whole session.
pytestmark = pytest.mark.usefixtures("app")

STRONG_12 = "Kx9#mQ2!vL7p"
PASSPHRASE = "lunar teapot orchestra"
GRACE = ["grace@mail.example", "Grace", "Hopper"]


async def rejected(password: str, context: list[str | None] | None = None) -> WeakPassword:
    with pytest.raises(WeakPassword) as raised:
        await passwords.check_policy(password, context or [])
    problem = raised.value
    assert problem.code == ErrorCode.WEAK_PASSWORD == "WEAK_PASSWORD"
    assert problem.field == "password"
    assert problem.message
    return problem


async def test_twelve_characters_are_enough_when_hard_to_guess() -> None:
    assert await passwords.check_policy(STRONG_12, []) == STRONG_12


async def test_fewer_than_twelve_characters_are_refused() -> None:
    problem = await rejected(STRONG_12[:11])

    assert "12" in problem.message


async def test_more_than_128_characters_are_refused() -> None:
    words = "lunar teapot orchestra velvet cactus granite harbour "
    longest = (words * 3)[:128]
    assert len(longest) == 128

    assert await passwords.check_policy(longest, []) == longest
    problem = await rejected(longest + "x")
    assert "128" in problem.message


async def test_length_counts_characters_after_normalisation() -> None:
    # U+FB03 (the "ffi" ligature) is three characters once NFKC-normalised.
    ligatures = "\ufb03" * 4
    assert len(ligatures) == 4

    with pytest.raises(WeakPassword) as raised:
        await passwords.check_policy(ligatures, [])
    assert "at least" not in raised.value.message  # refused as guessable, not as short


async def test_a_long_lowercase_passphrase_needs_no_digits_capitals_or_symbols() -> None:
    assert await passwords.check_policy(PASSPHRASE, []) == PASSPHRASE


@pytest.mark.parametrize(
    "password",
    [
        "password123",
        "password1234",
        "qwertyuiop12",
        "aaaaaaaaaaaa",
        "123456789012",
        "abcdefghijkl",
        "passwordpassword",
        "iloveyou1234",
    ],
)
async def test_common_and_patterned_passwords_are_refused(password: str) -> None:
    await rejected(password)


@pytest.mark.parametrize(
    "password",
    [
        "naïve-crème-brûlée-42",
        "северный ветер дует",
        "静かな湖の朝に小鳥が歌う",
        "🦉🌙🫖🎻🌵🪨🏰🧭🪁🎐🧊🍋",
    ],
)
async def test_any_unicode_is_accepted(password: str) -> None:
    assert await passwords.check_policy(password, []) == unicodedata.normalize("NFKC", password)


async def test_full_width_letters_are_the_same_password_as_ascii() -> None:
    full_width = "ｌｕｎａｒ\u3000ｔｅａｐｏｔ\u3000ｏｒｃｈｅｓｔｒａ"

    assert await passwords.check_policy(full_width, []) == PASSPHRASE
    assert await passwords.verify_password(await passwords.hash_password(full_width), PASSPHRASE)
    assert await passwords.verify_password(await passwords.hash_password(PASSPHRASE), full_width)
    assert not await passwords.verify_password(
        await passwords.hash_password(full_width), "lunar teapot orchestrA"
    )


async def test_composed_and_decomposed_accents_are_the_same_password() -> None:
    composed = unicodedata.normalize("NFC", "naïve-crème-brûlée-42")
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed

    assert await passwords.check_policy(decomposed, []) == composed
    assert await passwords.verify_password(await passwords.hash_password(composed), decomposed)


async def test_the_account_email_is_refused_as_a_password_only_for_that_account() -> None:
    assert await passwords.check_policy("grace@mail.example", []) == "grace@mail.example"

    await rejected("grace@mail.example", GRACE)


async def test_context_may_hold_missing_details() -> None:
    assert await passwords.check_policy(PASSPHRASE, [None, "", "  ", *GRACE]) == PASSPHRASE


async def test_a_password_built_from_the_account_details_is_refused() -> None:
    assert await passwords.check_policy("gracehopper2024", []) == "gracehopper2024"

    await rejected("gracehopper2024", GRACE)


@pytest.mark.parametrize("password", ["Gracehopper!!", "hoppergrace12", "GRACEHOPPER99"])
async def test_names_with_a_short_suffix_are_refused(password: str) -> None:
    await rejected(password, GRACE)
