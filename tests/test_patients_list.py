"""patients(search, first, after): staff list and search their own practice's
patients, by last name then first name, a page at a time."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from tortoise import connections

from models import Patient, Practice, Session
from portal.services.patients import common_short_terms, cursor_sql, encode_cursor
from tests import factories
from tests.conftest import FrozenClock, GraphQLClient, QueryCounter

PATIENTS = """
query Patients($search: String, $first: Int! = 25, $after: String) {
  patients(search: $search, first: $first, after: $after) {
    totalCount
    edges { cursor node { id firstName lastName } }
    pageInfo { hasNextPage endCursor }
  }
}
"""

PATIENTS_WITH_PORTAL = """
query PatientsWithPortal($first: Int!) {
  patients(first: $first) {
    edges { node { id lastName portal { status } } }
  }
}
"""


async def listing(client: GraphQLClient, **variables: Any) -> dict[str, Any]:
    result: dict[str, Any] = (await client.data(PATIENTS, **variables))["patients"]
    return result


def names(page: dict[str, Any]) -> list[str]:
    return [f"{e['node']['firstName']} {e['node']['lastName']}" for e in page["edges"]]


def bad_user_input(body: dict[str, Any]) -> bool:
    return body["data"] is None and [e["extensions"]["code"] for e in body["errors"]] == [
        "BAD_USER_INPUT"
    ]


async def make(practice: Practice, first: str, last: str, **fields: Any) -> Patient:
    return await factories.make_patient(practice, first_name=first, last_name=last, **fields)


async def test_staff_see_their_practice_by_last_then_first_name_ignoring_case(
    admin: GraphQLClient, clinician: GraphQLClient, practice: Practice, other_practice: Practice
) -> None:
    for first, last in [
        ("bob", "Carter"),
        ("Zoe", "adams"),
        ("Al", "baker"),
        ("amy", "Adams"),
        ("Dora", "carter"),
    ]:
        await make(practice, first, last)
    await make(other_practice, "Aaron", "Aardvark")

    for staff in (admin, clinician):
        page = await listing(staff)

        assert names(page) == ["amy Adams", "Zoe adams", "Al baker", "bob Carter", "Dora carter"]
        assert page["totalCount"] == 5
        assert page["pageInfo"]["hasNextPage"] is False


EVERY_FIELD = """
query EveryField($first: Int!) {
  patients(first: $first) {
    __typename
    edges {
      __typename
      cursor
      node { __typename id firstName lastName email phone dateOfBirth }
    }
    pageInfo { hasNextPage endCursor }
  }
}
"""


async def test_names_with_quotes_backslashes_and_accents_come_back_exactly(
    admin: GraphQLClient, practice: Practice, sql_queries: QueryCounter
) -> None:
    # On PostgreSQL the database writes the whole page as JSON: what it
    # escapes must read back as what was stored.
    odd = [
        ('Zoë "Z" 🙂', "O'Brien\\Núñez", "zoe+tag@mail.example", "+1 (555) 010-0000"),
        ("Łukasz", "Ärger", None, None),
        ("Ann", "Lee", "ann@mail.example", None),
    ]
    for first, last, email, phone in odd:
        await make(practice, first, last, email=email, phone=phone)
    stored = {str(p.id): p for p in await Patient.all()}

    page = (await admin.data(EVERY_FIELD, first=2))["patients"]

    assert page["__typename"] == "PatientConnection"
    assert len(page["edges"]) == 2
    assert page["pageInfo"] == {
        "hasNextPage": True,
        "endCursor": page["edges"][-1]["cursor"],
    }
    for edge in page["edges"]:
        node = edge["node"]
        patient = stored[node["id"]]
        assert edge["__typename"] == "PatientEdge"
        assert base64.urlsafe_b64decode(edge["cursor"] + "==").decode() == f"patient:{patient.id}"
        assert node == {
            "__typename": "Patient",
            "id": str(patient.id),
            "firstName": patient.first_name,
            "lastName": patient.last_name,
            "email": patient.email,
            "phone": patient.phone,
            "dateOfBirth": "1990-05-17",
        }
    assert [e["node"]["lastName"] for e in page["edges"]] == ["Lee", "O'Brien\\Núñez"]
    written_by_the_database = any("string_agg(item" in text for text in sql_queries.texts)
    assert written_by_the_database == (
        connections.get("default").capabilities.dialect == "postgres"
    )


async def test_the_database_writes_the_same_cursors_as_the_service() -> None:
    client = connections.get("default")
    if client.capabilities.dialect != "postgres":
        pytest.skip("only PostgreSQL writes cursors")
    ids = [uuid.uuid4() for _ in range(300)]

    rows = await client.execute_query_dict(
        f"SELECT id, {cursor_sql('postgres', 'id')} AS cursor"
        " FROM unnest($1::uuid[]) WITH ORDINALITY AS t(id, n) ORDER BY n",
        [ids],
    )

    assert [row["cursor"] for row in rows] == [encode_cursor(i) for i in ids]


async def test_a_session_ended_since_the_last_page_gets_no_next_page(
    admin: GraphQLClient, practice: Practice
) -> None:
    # The service plans a request for who the token was a moment ago and
    # checks the session within the page's own statement: nothing of a page
    # may reach a session that has ended in between.
    await make(practice, "Ann", "Lee")
    assert names(await listing(admin)) == ["Ann Lee"]
    await Session.filter(ended_at__isnull=True).update(ended_at=datetime.now(UTC))

    body = await admin.post(PATIENTS)

    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]


async def test_staff_asked_for_two_step_since_the_last_page_are_told_so(
    admin: GraphQLClient, practice: Practice
) -> None:
    await make(practice, "Ann", "Lee")
    assert names(await listing(admin)) == ["Ann Lee"]
    await Practice.filter(id=practice.id).update(staff_mfa_required=True)

    body = await admin.post(PATIENTS)

    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["MFA_REQUIRED"]


async def test_patients_with_the_same_name_are_ordered_by_id(
    admin: GraphQLClient, practice: Practice
) -> None:
    twins = [await make(practice, "Sam", "Smith") for _ in range(4)]
    await make(practice, "Sam", "Smyth")
    await make(practice, "Sal", "Smith")

    page = await listing(admin)

    ids = [e["node"]["id"] for e in page["edges"]]
    assert ids[1:5] == sorted(str(t.id) for t in twins)
    assert names(page)[0] == "Sal Smith"
    assert names(page)[5] == "Sam Smyth"


async def test_patients_and_anonymous_callers_cannot_list(
    anonymous: GraphQLClient, patient: GraphQLClient
) -> None:
    for caller, code in [(patient, "FORBIDDEN"), (anonymous, "UNAUTHENTICATED")]:
        body = await caller.post(PATIENTS)

        assert body["data"] is None
        assert body["errors"][0]["extensions"]["code"] == code


@pytest.fixture
async def searchable(practice: Practice, other_practice: Practice) -> None:
    await make(
        practice, "Ada", "Lovelace", email="ada@analytical.example", phone="+44 20 7946 0001"
    )
    await make(practice, "Grace", "Hopper", email="grace@navy.example", phone="+1 (555) 0199")
    await make(practice, "Alan", "Turing", email="alan@bletchley.example", phone=None)
    await make(practice, "Émile", "Zola", email="e.zola@paris.example", phone="01 42 00 00 00")
    await make(practice, "Jo", "March", email="amélie@lit.example", phone=None)
    # Another practice's patient matches every search below that finds Grace.
    await make(other_practice, "Grace", "Hopper", email="grace@navy.example", phone="+1 555 0199")


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("LOVE", ["Ada Lovelace"]),  # inside the last name
        ("rac", ["Grace Hopper"]),  # inside the first name
        ("aLaN", ["Alan Turing"]),
        ("éMILE", ["Émile Zola"]),  # case beyond ASCII
        ("NAVY.ex", ["Grace Hopper"]),  # inside the email
        ("@bletchley", ["Alan Turing"]),
        ("AMÉLIE@", ["Jo March"]),
        ("555-01", ["Grace Hopper"]),  # phone digits, whatever the punctuation
        ("(555) 0199", ["Grace Hopper"]),
        ("7946", ["Ada Lovelace"]),
        ("4200", ["Émile Zola"]),
        ("ada love", ["Ada Lovelace"]),  # every word matches some field
        ("  Grace   HOPPER ", ["Grace Hopper"]),
        ("grace turing", []),
        ("ada2@analytical", []),  # digits inside a word are not a phone number
        ("20 7946", ["Ada Lovelace"]),
        ("nobody", []),
    ],
)
async def test_search_finds_any_part_of_name_email_or_phone_ignoring_case(
    admin: GraphQLClient, searchable: None, search: str, expected: list[str]
) -> None:
    page = await listing(admin, search=search)

    assert names(page) == expected
    assert page["totalCount"] == len(expected)


async def test_an_empty_search_lists_everyone(admin: GraphQLClient, searchable: None) -> None:
    for search in (None, ""):
        page = await listing(admin, search=search)

        assert names(page) == [
            "Grace Hopper",
            "Ada Lovelace",
            "Jo March",
            "Alan Turing",
            "Émile Zola",
        ]


async def test_like_wildcards_in_a_search_are_literal(
    admin: GraphQLClient, practice: Practice
) -> None:
    await make(practice, "Ada", "Lovelace", email="ada_l@mail.example")
    await make(practice, "Alan", "Turing", email="alanturing@mail.example")
    await make(practice, "Fifty", "Per%cent", email="fifty@mail.example")
    await make(practice, "Bea", "Back\\slash", email="bea@mail.example")

    assert names(await listing(admin, search="%")) == ["Fifty Per%cent"]
    assert names(await listing(admin, search="_")) == ["Ada Lovelace"]
    # Unescaped, "a_l" would match "ail" in every address here.
    assert names(await listing(admin, search="a_l")) == ["Ada Lovelace"]
    assert names(await listing(admin, search="r%c")) == ["Fifty Per%cent"]
    assert names(await listing(admin, search="T%G")) == []
    assert names(await listing(admin, search="\\")) == ["Bea Back\\slash"]
    assert names(await listing(admin, search="k\\s")) == ["Bea Back\\slash"]


@pytest.mark.parametrize(("page_size", "page_lengths"), [(1, [1] * 8), (3, [3, 3, 2]), (8, [8])])
async def test_walking_the_pages_gives_every_patient_once_in_order(
    admin: GraphQLClient, practice: Practice, page_size: int, page_lengths: list[int]
) -> None:
    for first, last in [
        ("Eve", "Moss"),
        ("Ann", "moss"),
        ("Bo", "Abel"),
        ("Cy", "Zane"),
        ("Ann", "MOSS"),
        ("Di", "Lee"),
        ("Ann", "Moss"),
        ("Al", "Lee"),
    ]:
        await make(practice, first, last)
    expected = [
        str(p.id)
        for p in sorted(
            await Patient.all(),
            key=lambda p: (p.last_name.casefold(), p.first_name.casefold(), str(p.id)),
        )
    ]

    pages: list[dict[str, Any]] = []
    after = None
    for _ in range(len(expected) + 1):  # bounded, should paging never end
        page = await listing(admin, first=page_size, after=after)
        pages.append(page)
        assert page["totalCount"] == 8
        assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]

    ids = [e["node"]["id"] for p in pages for e in p["edges"]]
    assert ids == expected
    assert [len(p["edges"]) for p in pages] == page_lengths
    # Cursors are opaque: they do not show the patient's id.
    assert all(e["node"]["id"] not in e["cursor"] for p in pages for e in p["edges"])


async def test_pages_of_a_search_count_every_match(
    admin: GraphQLClient, practice: Practice
) -> None:
    for first in ["Ann", "Bob", "Cat", "Dan", "Eve"]:
        await make(practice, first, "Smith")
    await make(practice, "Fay", "Jones")

    first_page = await listing(admin, search="smith", first=2)
    second_page = await listing(
        admin, search="smith", first=2, after=first_page["pageInfo"]["endCursor"]
    )
    last_page = await listing(
        admin, search="smith", first=2, after=second_page["pageInfo"]["endCursor"]
    )

    assert [p["totalCount"] for p in (first_page, second_page, last_page)] == [5, 5, 5]
    assert names(first_page) + names(second_page) + names(last_page) == [
        "Ann Smith",
        "Bob Smith",
        "Cat Smith",
        "Dan Smith",
        "Eve Smith",
    ]
    assert [p["pageInfo"]["hasNextPage"] for p in (first_page, second_page, last_page)] == [
        True,
        True,
        False,
    ]


async def test_a_page_that_ends_exactly_at_the_last_patient_has_no_next_page(
    admin: GraphQLClient, practice: Practice
) -> None:
    for first in ["Ann", "Bob"]:
        await make(practice, first, "Smith")

    page = await listing(admin, first=2)

    assert len(page["edges"]) == 2
    assert page["pageInfo"]["hasNextPage"] is False


async def test_an_empty_result_has_no_end_cursor(admin: GraphQLClient, practice: Practice) -> None:
    empty = await listing(admin)
    await make(practice, "Ada", "Lovelace")
    no_match = await listing(admin, search="nobody")

    for page in (empty, no_match):
        assert page["edges"] == []
        assert page["totalCount"] == 0
        assert page["pageInfo"] == {"hasNextPage": False, "endCursor": None}


async def test_a_page_holds_25_patients_unless_asked_otherwise(
    admin: GraphQLClient, practice: Practice
) -> None:
    for n in range(26):
        await make(practice, "Ann", f"Smith{n:02}")

    page = await listing(admin)

    assert len(page["edges"]) == 25
    assert page["pageInfo"]["hasNextPage"] is True
    assert page["totalCount"] == 26


async def test_first_may_be_1_to_100(admin: GraphQLClient, practice: Practice) -> None:
    for first in ["Ann", "Bob"]:
        await make(practice, first, "Smith")

    assert len((await listing(admin, first=1))["edges"]) == 1
    assert len((await listing(admin, first=100))["edges"]) == 2


@pytest.mark.parametrize("first", [0, -1, 101, 1000])
async def test_first_outside_1_to_100_is_bad_user_input(
    admin: GraphQLClient, practice: Practice, first: int
) -> None:
    await make(practice, "Ada", "Lovelace")

    body = await admin.post(PATIENTS, first=first)

    assert bad_user_input(body), body


def encoded(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "",
        "!!!",
        "ÿ",
        encoded("patient:not-a-uuid"),
        encoded(f"patient:{uuid.uuid4()}"),
        encoded(f"account:{uuid.uuid4()}"),
    ],
)
async def test_a_malformed_cursor_is_bad_user_input(
    admin: GraphQLClient, practice: Practice, cursor: str
) -> None:
    await make(practice, "Ada", "Lovelace")

    body = await admin.post(PATIENTS, after=cursor)

    assert bad_user_input(body), body


async def test_a_patient_id_is_not_a_cursor(admin: GraphQLClient, practice: Practice) -> None:
    ada = await make(practice, "Ada", "Lovelace")
    await make(practice, "Bob", "Smith")

    body = await admin.post(PATIENTS, after=str(ada.id))

    assert bad_user_input(body), body


async def test_a_cursor_from_another_practice_is_bad_user_input(
    admin: GraphQLClient, other_admin: GraphQLClient, practice: Practice, other_practice: Practice
) -> None:
    for first in ["Ann", "Bob", "Cat"]:
        await make(practice, first, "Smith")
        await make(other_practice, first, "Smith")
    theirs = await listing(other_admin, first=1)

    body = await admin.post(PATIENTS, first=1, after=theirs["pageInfo"]["endCursor"])

    assert bad_user_input(body), body


async def test_another_practice_is_never_seen_even_by_search(
    admin: GraphQLClient, other_admin: GraphQLClient, practice: Practice, other_practice: Practice
) -> None:
    await make(practice, "Ada", "Lovelace", email="ada@mail.example", phone="+1 555 0100")
    await make(other_practice, "Zelda", "South", email="zelda@mail.example", phone="+1 555 0199")

    ours = await listing(admin)
    assert names(ours) == ["Ada Lovelace"]
    assert ours["totalCount"] == 1
    for search in ["zelda", "south", "zelda@mail", "0199", "mail.example", "555"]:
        page = await listing(admin, search=search)
        assert "Zelda South" not in names(page)
        assert page["totalCount"] == len(page["edges"])
    assert names(await listing(other_admin)) == ["Zelda South"]


async def test_a_list_with_portal_status_costs_the_same_queries_for_2_or_100(
    clock: FrozenClock,
    admin: GraphQLClient,
    practice: Practice,
    sql_queries: QueryCounter,
) -> None:
    patients = [await make(practice, f"First{n:03}", f"Last{n:03}") for n in range(100)]
    for signed_up in (patients[0], patients[50], patients[99]):
        await factories.make_patient_account(signed_up)

    sql_queries.count = 0
    small = await admin.data(PATIENTS_WITH_PORTAL, first=2)
    small_cost = sql_queries.count
    sql_queries.count = 0
    large = await admin.data(PATIENTS_WITH_PORTAL, first=100)
    large_cost = sql_queries.count

    assert len(small["patients"]["edges"]) == 2
    assert len(large["patients"]["edges"]) == 100
    statuses = [e["node"]["portal"]["status"] for e in large["patients"]["edges"]]
    assert [i for i, s in enumerate(statuses) if s == "SIGNED_UP"] == [0, 50, 99]
    assert small_cost > 0
    assert large_cost == small_cost


PLAIN_PAGE = """
query Plain($first: Int!) {
  patients(first: $first) { edges { node { id firstName lastName email phone dateOfBirth } } }
}
"""
COUNTED_PAGE = """
query Counted($first: Int!) {
  patients(first: $first) {
    totalCount
    edges { cursor node { id firstName lastName email } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


@pytest.mark.parametrize(
    ("operation", "on_postgres", "on_sqlite"),
    [
        # The session, then the page (the count, when asked, is inside it).
        # On PostgreSQL the database writes the page whole, and the session
        # is checked in that same statement.
        (PLAIN_PAGE, 1, 2),
        (COUNTED_PAGE, 1, 2),
        # Portal states are one more statement for the whole page.
        (PATIENTS_WITH_PORTAL, 3, 3),
    ],
    ids=["fields", "totalCount and pageInfo", "portal"],
)
async def test_a_page_costs_the_same_statements_at_any_size(
    admin: GraphQLClient,
    practice: Practice,
    sql_queries: QueryCounter,
    operation: str,
    on_postgres: int,
    on_sqlite: int,
) -> None:
    for n in range(60):
        await make(practice, f"First{n:02}", f"Last{n:02}", email=f"p{n}@mail.example")
    await admin.data(operation, first=1)  # the operation compiled, the session warm
    postgres = connections.get("default").capabilities.dialect == "postgres"

    for first in (1, 10, 50):
        sql_queries.count = 0
        data = await admin.data(operation, first=first)

        assert len(data["patients"]["edges"]) == first
        assert sql_queries.count == (on_postgres if postgres else on_sqlite), (
            first,
            sql_queries.count,
        )


async def test_one_or_two_letters_match_anywhere_in_a_word_too(
    admin: GraphQLClient, practice: Practice
) -> None:
    await make(practice, "Ada", "Lovelace", email="ada@mail.example", phone="+1 555 0100")
    await make(practice, "Grace", "Hopper", email="grace@navy.example", phone="+44 20 7946")
    await make(practice, "Alan", "Turing", email=None, phone=None)

    # Short words have no trigram to look up on PostgreSQL: they are looked up
    # in an index of characters and pairs, unless the database's statistics
    # say they are in most patients; either way they match alike.
    async def every_short_search_matches_alike() -> None:
        for search, expected in [
            ("ve", ["Ada Lovelace"]),
            ("PP", ["Grace Hopper"]),
            ("a", ["Ada Lovelace", "Grace Hopper", "Alan Turing"]),
            ("av", ["Grace Hopper"]),  # in the email only
            ("ma", ["Ada Lovelace"]),  # "mail.example"
            ("01", ["Ada Lovelace"]),  # in the phone's digits
            ("ve ad", ["Ada Lovelace"]),
            ("ve hopper", []),
            ("ß", []),  # folds to "ss" in names, stays itself in emails
        ]:
            page = await listing(admin, search=search)
            assert sorted(names(page)) == sorted(expected), search
            assert page["totalCount"] == len(expected), search

    await every_short_search_matches_alike()

    if connections.get("default").capabilities.dialect == "postgres":
        await connections.get("default").execute_script("ANALYZE patient")
        common_short_terms.forget()
        await every_short_search_matches_alike()
        assert {"a", "e"} <= common_short_terms.terms  # in every patient: matched by strpos


async def test_short_searches_count_their_matches_as_patients_change(
    admin: GraphQLClient, practice: Practice
) -> None:
    """On PostgreSQL a search of up to three letters, and a list with no
    search, is counted from per-practice counts the database keeps as
    patients change; they must agree with the matches through creation,
    renaming, a new email and removal, and never mix in another practice's
    patients."""
    elsewhere = await factories.make_practice(slug="elsewhere")
    await make(elsewhere, "Mara", "Amman", email="mara@mail.example")
    ada = await make(practice, "Ada", "Lovelace", email="ada@mail.example")
    grace = await make(practice, "Grace", "Hopper", email="grace@navy.example")
    await make(practice, "Alan", "Turing", email=None)

    async def counts_match_the_patients_found() -> None:
        everyone = await Patient.filter(practice_id=practice.id)
        for term in (
            "a",
            "ma",
            "ov",
            "@",
            "e.",
            "x",
            "zz",
            "AD",
            "ss",
            "ace",
            "l.e",
            "yro",
            "",
            "ada",
        ):
            expected = [
                p
                for p in everyone
                if term.lower()
                in f"{p.first_name.casefold()} {p.last_name.casefold()} {p.email or ''}"
            ]
            page = await listing(admin, search=term, first=100)
            assert page["totalCount"] == len(expected) == len(page["edges"]), term

    await counts_match_the_patients_found()

    ada.last_name, ada.last_name_key = "Byron", "byron"
    await ada.save()
    grace.email = "grace@mail.example"
    await grace.save()
    await Patient.filter(practice_id=practice.id, first_name="Alan").delete()
    await make(practice, "Zora", "Neale", email="zora@mail.example")
    await counts_match_the_patients_found()

    if connections.get("default").capabilities.dialect == "postgres":
        # Every count the database keeps equals a recount of its patients.
        _, drifted = await connections.get("default").execute_query(
            """
            SELECT gram FROM patient_short_gram_count counted FULL JOIN (
                SELECT practice_id, gram, count(*) AS patients FROM patient,
                unnest(patient_search_grams(first_name_key || ' ' || last_name_key
                    || ' ' || coalesce(email, ''))) AS gram
                GROUP BY practice_id, gram
            ) recount USING (practice_id, gram)
            WHERE coalesce(counted.patients, 0) <> coalesce(recount.patients, 0)
            """
        )
        assert drifted == []


async def test_pages_of_a_short_term_follow_one_another_to_the_last(
    admin: GraphQLClient, practice: Practice, other_practice: Practice
) -> None:
    """A term of up to three letters is looked for among the practice's first
    patients in name order, and through the indexes when the page is not all
    there (the last page, or matches late in the alphabet): page after page,
    each patient comes once, in order, with the count of all of them."""
    for n in range(30):
        await make(practice, f"Anna{n:02}", f"Zeller{n:02}", email=f"a{n}@mail.example")
        await make(practice, f"Bo{n:02}", f"Abbot{n:02}", email=f"b{n}@mail.example")
    await make(other_practice, "Anna", "Zeller", email="elsewhere@mail.example")

    for term, first in [("zel", 7), ("nna", 4), ("ZE", 30), ("bo", 31), ("l.e", 10)]:
        expected = sorted(
            (
                (p.last_name_key, p.first_name_key, str(p.id))
                for p in await Patient.filter(practice_id=practice.id)
                if term.lower() in f"{p.first_name_key} {p.last_name_key} {p.email}"
            ),
        )
        seen: list[str] = []
        after = None
        while True:
            page = await listing(admin, search=term, first=first, after=after)
            assert page["totalCount"] == len(expected), term
            seen += [e["node"]["id"] for e in page["edges"]]
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        assert seen == [patient_id for _, _, patient_id in expected], term
