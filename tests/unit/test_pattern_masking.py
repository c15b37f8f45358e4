"""tokenize(): the value kinds it masks and its edge cases."""

import pytest

from logs.mining import MAX_TOKENS, WILDCARD, tokenize
from logs.mining.masking import MAX_TOKEN_LENGTH
from tests.loghub import LOGHUB_SYSTEMS, loghub_rows

# One message per masked kind, and the tokens it must become.
MASKED_KINDS = {
    "integer": ("took 1234 steps", ["took", WILDCARD, "steps"]),
    "signed float with exponent": ("value -3.5e10 ok", ["value", WILDCARD, "ok"]),
    "number with unit suffix": ("waited 250ms", ["waited", WILDCARD]),
    "size with spaced unit": ("size 5.2 KB, free", ["size", WILDCARD, "<*>,", "free"]),
    "version": ("version 1.2.3", ["version", WILDCARD]),
    "hex with 0x": ("id 0x7f3a", ["id", WILDCARD]),
    "bare hex id": ("hash 9f86d081884c7d65", ["hash", WILDCARD]),
    "uuid": (
        "req 123e4567-e89b-12d3-a456-426614174000 done",
        ["req", WILDCARD, "done"],
    ),
    "ipv4": ("from 10.0.0.1 ok", ["from", WILDCARD, "ok"]),
    "ipv4 with port": ("from 10.0.0.1:8080 ok", ["from", WILDCARD, "ok"]),
    "ipv6": ("from fe80::1 ok", ["from", WILDCARD, "ok"]),
    "ipv6 with port": ("from [2001:db8::1]:443 ok", ["from", "[<*>]:<*>", "ok"]),
    "mac with colons": ("mac 00:1a:2b:3c:4d:5e up", ["mac", WILDCARD, "up"]),
    "mac with dashes": ("mac 00-1A-2B-3C-4D-5E up", ["mac", WILDCARD, "up"]),
    "unix path": ("open /var/log/syslog failed", ["open", WILDCARD, "failed"]),
    "windows path": (r"open C:\Windows\x.dll failed", ["open", WILDCARD, "failed"]),
    "url": ("get https://example.com/a?b=1 ok", ["get", WILDCARD, "ok"]),
    "email": ("mail bob.smith@example.org sent", ["mail", WILDCARD, "sent"]),
    "iso date-time": ("at 2024-01-02T03:04:05.123Z go", ["at", WILDCARD, "go"]),
    "iso date-time with space": (
        "at 2024-01-02 03:04:05,123 go",
        ["at", WILDCARD, "go"],
    ),
    "iso date": ("on 2024-01-02 go", ["on", WILDCARD, "go"]),
    "time": ("at 12:34:56 go", ["at", WILDCARD, "go"]),
    "slashed date": ("on 10/18/2015 go", ["on", WILDCARD, "go"]),
    "ctime date": ("at Fri Jun 17 07:07:00 2005 go", ["at", WILDCARD, "go"]),
    "syslog date": ("at Jun 9 12:00:01 go", ["at", WILDCARD, "go"]),
    "key=value": ("user=bob ok", ["user=<*>", "ok"]),
    "quoted key=value": ('tag="View Lock" ok', ["tag=<*>", "ok"]),
    "empty key=value": ("rhost= user=x", ["rhost=", "user=<*>"]),
    "id with digits": ("job_1445144423722_0020 ok", ["job_<*>", "ok"]),
    "word with digit": ("via ssh2", ["via", WILDCARD]),
}


@pytest.mark.parametrize("kind", sorted(MASKED_KINDS))
def test_tokenize_masks_kind(kind):
    message, expected = MASKED_KINDS[kind]

    assert tokenize(message) == expected


def test_tokenize_keeps_words():
    assert tokenize("Connection closed by peer") == [
        "Connection",
        "closed",
        "by",
        "peer",
    ]


def test_tokenize_splits_call_arguments():
    assert tokenize("by LOGIN(uid=0)") == ["by", "LOGIN", "(uid=<*>)"]


def test_tokenize_splits_compact_json():
    assert tokenize('{"a":1,"b":"x"}') == ['{"a":<*>,', '"b":"x"}']


@pytest.mark.parametrize("message", ["", " ", "\t\n  \r"])
def test_tokenize_blank_message(message):
    assert tokenize(message) == []


def test_tokenize_unicode():
    assert tokenize("ünïcode wörds 42 ✓ Σ") == ["ünïcode", "wörds", WILDCARD, "✓", "Σ"]


def test_tokenize_unicode_whitespace():
    assert tokenize("a\u00a0b\u2003c") == ["a", "b", "c"]


def test_tokenize_caps_token_count():
    tokens = tokenize(" ".join(f"word{index}x" for index in range(MAX_TOKENS * 3)))

    assert len(tokens) == MAX_TOKENS
    assert tokens[-1] == WILDCARD


def test_tokenize_long_token():
    longest_word = "a" * MAX_TOKEN_LENGTH
    masked = "a" * (MAX_TOKEN_LENGTH + 1)

    assert tokenize(f"start {longest_word} 7") == ["start", longest_word, WILDCARD]
    assert tokenize(f"start {masked} 7") == ["start", WILDCARD, WILDCARD]
    assert tokenize("b" * 100_000) == [WILDCARD]


def test_tokenize_masks_long_value_token():
    message = f"start {'a' * MAX_TOKEN_LENGTH}@{'b' * 40} end"

    assert tokenize(message) == ["start", WILDCARD, "end"]


def test_tokenize_ignores_over_long_key():
    key = "k" * 65

    assert tokenize(f"{key}=value ok") == [f"{key}=value", "ok"]


# Messages of the longest length intake accepts, made of runs that a mask
# without a bound would scan again from each of their positions.
LONGEST = 262_144
RESCANNED_RUNS = {
    "run before an at sign": ("a" * (LONGEST - 1) + "@", [WILDCARD]),
    "run before a slash": ("a" * (LONGEST - 1) + "/", [WILDCARD]),
    "dots before a digit": ("." * (LONGEST - 1) + "1", [WILDCARD]),
    "dotted digits": ("1." * (LONGEST // 2 - 1) + "x", [WILDCARD]),
    "word run before a digit": ("a" * (LONGEST - 2) + "_1", [WILDCARD]),
    "dotted words before an equals sign": (
        ".a" * (LONGEST // 2 - 1) + " =",
        [WILDCARD, "="],
    ),
}


@pytest.mark.parametrize("case", sorted(RESCANNED_RUNS))
def test_tokenize_longest_message_in_one_pass(case, settings):
    message, expected = RESCANNED_RUNS[case]
    assert len(message) <= settings.INTAKE_MAX_MESSAGE_LENGTH

    assert tokenize(message) == expected


@pytest.mark.parametrize("system", sorted(LOGHUB_SYSTEMS))
def test_tokens_have_no_whitespace(system):
    for row in loghub_rows(system):
        tokens = tokenize(row["Content"])
        assert all(tokens), row["Content"]
        assert not any(char.isspace() for token in tokens for char in token)
        assert " ".join(tokens).split(" ") == tokens, row["Content"]
