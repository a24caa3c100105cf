"""How entity IRIs are minted: deterministic, readable, from identifiers.

The scheme (documented in README.md) is a public contract: users link to
these IRIs from their own data, so a change here is a breaking change.

=====================  ==============================================
entity                 IRI under the base (default https://w3id.org/epar/)
=====================  ==============================================
medicinal product      product/EMEA-H-C-004258 (veterinary: product/EMEA-V-C-006513)
authorisation          authorisation/EMEA-H-C-004258
procedure              procedure/EMEA-H-C-004258-II-0051-G
document               document/EMEA-H-C-004258/<title-slug>-<yyyy-mm-dd>
overview question      product/EMEA-H-C-004258/question/<n>  (answer: …/answer/<n>)
organisation (holder)  organisation/<normalised-name-slug>
holder address         organisation/<slug>/address
active substance       substance/<normalised-name-slug>
orphan designation     orphan-designation/EU-3-09-672
concept                <scheme>/<notation or slug>, e.g. atc/L04AX08, atcvet/QJ01CA04,
                       status/withdrawn, category/veterinary, species/dogs
concept scheme         scheme/<scheme>, e.g. scheme/atc
=====================  ==============================================
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import re
import unicodedata
from dataclasses import dataclass

_NON_SLUG = re.compile(r"[^a-z0-9]+")

#: Concept schemes, by the path segment their concepts live under.
SCHEMES = (
    "status",
    "document-section",
    "document-type",
    "atc",
    "therapeutic-area",
    "pharmacotherapeutic-group",
    "orphan-condition",
    "category",
    "atcvet",
    "species",
    "opinion-status",
    "change-type",
)
#: Schemes whose concept keys are codes kept in upper case (not slugged).
CODE_SCHEMES = frozenset({"atc", "atcvet"})


@functools.lru_cache(maxsize=1 << 16)  # a build mints the same holders, substances and concepts again and again
def slug(text: str) -> str:
    """Lower-case ASCII words joined by hyphens: "Takeda Pharma A/S" → "takeda-pharma-a-s"."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    s = _NON_SLUG.sub("-", ascii_text.lower()).strip("-")
    return s or "x" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:10]


@functools.lru_cache(maxsize=1 << 16)
def normalise_name(text: str) -> str:
    """The key under which two spellings of a company or substance name are one node."""
    return " ".join(_NON_SLUG.sub(" ", unicodedata.normalize("NFKD", text).lower()).split())


#: Spellings of a legal form (as the last word of a normalised name) → the one the
#: IRI is minted from: "Pfizer Ltd" and "Pfizer Limited" are one organisation,
#: "Pfizer Limited" and "Pfizer Inc" are two. Letters of an abbreviation are kept
#: apart ("s a"), as normalisation already writes "S.A.", so existing IRIs stay.
LEGAL_FORMS = {
    "ltd": "limited",
    "bv": "b v",
    "nv": "n v",
    "sa": "s a",
    "sas": "s a s",
    "sau": "s a u",
    "spa": "s p a",
    "srl": "s r l",
    "sl": "s l",
    "slu": "s l u",
    "as": "a s",
    "corp": "corporation",
    "incorporated": "inc",
}


def normalise_organisation(text: str) -> str:
    """The key under which spellings of one company's name and legal form are one node."""
    words = normalise_name(text).split()
    if words and words[-1] in LEGAL_FORMS:
        words[-1] = LEGAL_FORMS[words[-1]]
    return " ".join(words)


def _number(product_number: str) -> str:
    return product_number.strip().replace("/", "-")


def _known_scheme(name: str) -> str:
    if name not in SCHEMES:
        raise ValueError(f"unknown concept scheme {name!r}")
    return name


#: The base entity IRIs are minted under unless a build says otherwise.
DEFAULT_BASE = "https://w3id.org/epar/"


class IriError(ValueError):
    """A base IRI that cannot carry the minted paths."""


@dataclass(frozen=True)
class Minter:
    """Every IRI the graph mints, under one base.

    A release records its base as ``void:uriSpace`` of its dataset (``void.ttl``); the
    validator and the server make their ``Minter`` from that (:func:`Minter.of_release`
    in ``release.py``), so ``--base`` is given once, at build, and every stage agrees.
    """

    base: str = DEFAULT_BASE

    def __post_init__(self) -> None:
        if not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://[^\s<>\"{}|^`\\]+$", self.base):
            raise IriError(f"base IRI {self.base!r} is not an absolute IRI (e.g. https://example.org/epar/)")
        if not self.base.endswith("/"):
            object.__setattr__(self, "base", self.base + "/")

    def owns(self, iri: str) -> bool:
        """Whether ``iri`` is one of ours (minted under this base)."""
        return iri.startswith(self.base)

    def product(self, product_number: str) -> str:
        return f"{self.base}product/{_number(product_number)}"

    def authorisation(self, product_number: str) -> str:
        return f"{self.base}authorisation/{_number(product_number)}"

    def procedure(self, procedure_number: str) -> str:
        return f"{self.base}procedure/{_number(procedure_number)}"

    def document(self, product_number: str, title: str, date: dt.date | None) -> str:
        suffix = f"-{date.isoformat()}" if date else ""
        return f"{self.base}document/{_number(product_number)}/{slug(title)}{suffix}"

    def question(self, product_number: str, n: int) -> str:
        return f"{self.product(product_number)}/question/{n}"

    def answer(self, product_number: str, n: int) -> str:
        return f"{self.product(product_number)}/answer/{n}"

    def organisation(self, name: str) -> str:
        return f"{self.base}organisation/{slug(normalise_organisation(name))}"

    def address(self, name: str) -> str:
        return f"{self.organisation(name)}/address"

    def substance(self, name: str) -> str:
        return f"{self.base}substance/{slug(normalise_name(name))}"

    def snapshot(self, date: dt.date) -> str:
        """One of EMA's exports, by its date: ``snapshot/2026-03-14``."""
        return f"{self.base}snapshot/{date.isoformat()}"

    def change(self, product_number: str, to_date: dt.date, what: str) -> str:
        """``change/EMEA-H-C-004258/2026-01-29/authorisationStatus``: one fact, one product, one export."""
        return f"{self.base}change/{_number(product_number)}/{to_date.isoformat()}/{what}"

    def orphan_designation(self, number: str) -> str:
        return f"{self.base}orphan-designation/{_number(number)}"

    def concept(self, scheme: str, key: str) -> str:
        """A concept IRI; ATC and ATCvet codes keep their case, other keys are slugged."""
        return f"{self.base}{_known_scheme(scheme)}/{key.strip().upper() if scheme in CODE_SCHEMES else slug(key)}"

    def scheme(self, name: str) -> str:
        return f"{self.base}scheme/{_known_scheme(name)}"

    # The release itself, as its VoID/DCAT description names it.

    def dataset(self, part: str = "") -> str:
        """The dataset (``dataset``) or a part of it: ``dataset/changes``, ``dataset/class/…``."""
        return f"{self.base}dataset/{part}" if part else f"{self.base}dataset"

    def source(self, file_name: str) -> str:
        """A source file of a release, as void.ttl describes it (counts, sha256, date)."""
        return self.dataset(f"source/{file_name}")

    def linkset(self, name: str) -> str:
        return f"{self.base}void/linkset/{name}"

    def download(self, file_name: str) -> str:
        return f"{self.base}downloads/{file_name}"

    def sparql_endpoint(self) -> str:
        return f"{self.base}sparql"
