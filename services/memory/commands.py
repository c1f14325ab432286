"""Noticing a message that asks Sluice to remember something: "remember that I prefer
metric units", "Remember: …", "please remember my team is billing".

Deterministic rules, no model: the request must *open* with the command (after an
optional greeting and "please"), so "I remember that…" or "do you remember…?" never
match. Questions are not commands: "remember when we…?", "can you remember that
meeting?" store nothing; a polite "could you please remember that …" does. Only the
first sentence is the fact, so "Remember that I'm vegan. What should I cook?" keeps
"I'm vegan" and the question is answered as usual.
"""
from __future__ import annotations

import re

from .store import MAX_CONTENT

_OPENING = r"^\s*(?:(?:hey|hi|hello|ok|okay|so|also|and)\b[\s,!.]*)?"
# The command itself, in the forms people type; a polite question needs "please".
_COMMAND = re.compile(
    _OPENING + r"(?:"
    r"(?:please\s+)?(?:remember|memori[sz]e|note\s+down|make\s+a\s+note)"
    r"|(?:please\s+)?(?:don'?t|do\s+not)\s+forget"
    r"|(?P<polite>(?:can|could|would|will)\s+you\s+please|"
    r"please\s+(?:can|could|would|will)\s+you)\s+(?:remember|memori[sz]e|note\s+down)"
    r")\b(?:\s+(?:this|for\s+(?:me|later|the\s+future)|going\s+forward|from\s+now\s+on)\b)*"
    r"(?:\s*[:,\-–—]\s*|\s+that\b[\s:,]*|\s+)(?P<fact>.+)$",
    re.IGNORECASE | re.DOTALL)
# What follows "remember" when it is a reminder or a question, not a fact to keep.
_NOT_A_FACT = re.compile(
    r"^(?:to|what|when|where|who|whom|whose|why|how|which|if|whether|me|us|it|this|that|"
    r"anything|everything|something|nothing|the\s+time)\b[?.!]*$|"
    r"^(?:to|what|when|where|who|whom|whose|why|how|which|if|whether|remember)\b|"
    r"^(?:that\s+)?time\s+(?:when|we|i|you)\b",
    re.IGNORECASE)
# The end of the first sentence: a stop, then a blank and a capital or a new line.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])|\n\s*\n|\n")
_TRAILING = re.compile(r"(?:[\s,]+(?:please|thanks|thank\s+you|for\s+me|ok(?:ay)?))+[\s.!]*$"
                       r"|[\s.!]+$", re.IGNORECASE)


def _first_sentence(text: str) -> str:
    return _SENTENCE_END.split(text.strip(), maxsplit=1)[0].strip()


def remembered(text: str) -> str | None:
    """The fact a user message asks to remember, or None if it does not ask.

    The fact is returned as the user wrote it (first letter capitalized, trailing
    "please"/"thanks" and full stops dropped), so the list shows their own words.
    """
    match = _COMMAND.match(text)
    if match is None:
        return None
    fact = _first_sentence(match.group("fact"))
    if match.group("polite"):  # "could you please remember that …?" asks, politely
        fact = fact.rstrip("?").rstrip()
    if not fact or fact.endswith("?") or _NOT_A_FACT.match(fact):
        return None
    fact = _TRAILING.sub("", fact).strip().strip("\"'“”").strip()
    if not re.search(r"\w", fact) or len(fact) > MAX_CONTENT:
        return None
    return fact[0].upper() + fact[1:]
