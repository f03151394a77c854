"""The reason-code catalogue: which features a code covers, its text, its version."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..exceptions import CatalogueError

#: Prefix of the code given to a feature that has no catalogue entry.
UNMAPPED_PREFIX = "UNMAPPED:"


# -- the catalogue -------------------------------------------------------------------------------
@dataclass(frozen=True)
class CatalogueEntry:
    """One reason code, its text and the features (or groups) it covers."""

    code: str
    text: str
    features: tuple[str, ...]


class ReasonCatalogue:
    """Reason codes and texts keyed by feature or feature-group name (many-to-one).

    Parameters
    ----------
    entries : sequence of CatalogueEntry
    version : str
        The catalogue's version, recorded with every reason (regulators ask which wording was
        in force).
    name : str, optional

    Notes
    -----
    ``sha256`` is a digest of the entries, name and version, so a record proves which texts
    were used even if a version string was not bumped after an edit.
    """

    def __init__(
        self, entries: Sequence[CatalogueEntry], *, version: str, name: str | None = None
    ) -> None:
        if not isinstance(version, str) or not version:
            raise CatalogueError("a catalogue needs a non-empty version string (it is recorded)")
        codes: set[str] = set()
        owner: dict[str, str] = {}
        for entry in entries:
            if entry.code in codes:
                raise CatalogueError(f"code {entry.code!r} appears twice in the catalogue")
            if entry.code.startswith(UNMAPPED_PREFIX):
                raise CatalogueError(f"code {entry.code!r} uses the reserved prefix")
            codes.add(entry.code)
            for feat in entry.features:
                if feat in owner:
                    raise CatalogueError(
                        f"feature {feat!r} is under both {owner[feat]!r} and {entry.code!r}; "
                        "each feature maps to one code"
                    )
                owner[feat] = entry.code
        self.entries = tuple(entries)
        self.version = version
        self.name = name
        self._by_feature = {f: e for e in self.entries for f in e.features}
        self.sha256 = hashlib.sha256(
            json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=True).encode()
        ).hexdigest()

    def __repr__(self) -> str:
        return (
            f"ReasonCatalogue(name={self.name!r}, version={self.version!r}, "
            f"{len(self.entries)} codes)"
        )

    def entry_for(self, feature: str) -> CatalogueEntry | None:
        """The entry that covers ``feature`` (a feature or group name), if any."""
        return self._by_feature.get(feature)

    def check_features(
        self, feature_names: Sequence[str], groups: Mapping[str, Sequence[str]] | None = None
    ) -> None:
        """Refuse a catalogue that maps a feature the model does not have.

        :func:`reason_codes` accepts such a catalogue (one catalogue may serve several
        models); a caller that knows its catalogue is written for this model (``sxai``, the
        service) checks it here, so that a typo (``purpos``) is not silently an unmapped
        feature.

        Parameters
        ----------
        feature_names : sequence of str
            The model's features.
        groups : mapping, optional
            Feature groups: a group name and the columns inside it are known too.

        Raises
        ------
        CatalogueError
            Naming the unknown feature(s) and the model's features.
        """
        known = {str(f) for f in feature_names}
        for name, cols in (groups or {}).items():
            known.add(str(name))
            known.update(str(c) for c in cols)
        unknown = [f for e in self.entries for f in e.features if f not in known]
        if unknown:
            shown = ", ".join(str(f) for f in list(feature_names)[:20])
            raise CatalogueError(
                f"the catalogue maps {', '.join(repr(u) for u in unknown)}, which the model "
                f"does not have; the model's features: {shown}"
                + (", ..." if len(feature_names) > 20 else "")
            )

    def describe(self) -> dict[str, Any]:
        """What a record keeps: name, version and digest."""
        return {"name": self.name, "version": self.version, "sha256": self.sha256}

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "reasons": [
                {"code": e.code, "text": e.text, "features": list(e.features)} for e in self.entries
            ],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ReasonCatalogue:
        """Build from ``{"name": ..., "version": ..., "reasons": [{code, text, features}]}``."""
        if not isinstance(d, Mapping):
            raise CatalogueError(f"a catalogue must be a mapping, got {type(d).__name__}")
        unknown = set(d) - {"name", "version", "reasons"}
        if unknown:
            raise CatalogueError(f"unknown catalogue key(s) {sorted(unknown)}")
        if "version" not in d:
            raise CatalogueError("the catalogue has no 'version'")
        reasons = d.get("reasons")
        if not isinstance(reasons, list) or not reasons:
            raise CatalogueError("the catalogue needs a non-empty list under 'reasons'")
        entries = []
        for i, item in enumerate(reasons):
            if not isinstance(item, Mapping) or set(item) != {"code", "text", "features"}:
                raise CatalogueError(
                    f"reasons[{i}] must have exactly the keys code, text, features; got "
                    f"{sorted(item) if isinstance(item, Mapping) else type(item).__name__}"
                )
            code, text, feats = item["code"], item["text"], item["features"]
            if not isinstance(code, str) or not code or not isinstance(text, str) or not text:
                raise CatalogueError(f"reasons[{i}]: code and text must be non-empty strings")
            if isinstance(feats, str):
                feats = [feats]
            if (
                not isinstance(feats, list)
                or not feats
                or not all(isinstance(f, str) for f in feats)
            ):
                raise CatalogueError(f"reasons[{i}] ({code}): features must be a list of names")
            entries.append(CatalogueEntry(code, text, tuple(feats)))
        version = d["version"]
        name = d.get("name")
        return cls(
            entries,
            version=str(version) if isinstance(version, int | float) else version,
            name=None if name is None else str(name),
        )

    @classmethod
    def from_yaml(cls, text: str) -> ReasonCatalogue:
        """Parse YAML text (see the module docstring for the layout)."""
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise CatalogueError(f"the catalogue is not valid YAML: {exc}") from exc
        return cls.from_dict(data)


def load_catalogue(
    source: ReasonCatalogue | Mapping[str, Any] | str | os.PathLike[str],
) -> ReasonCatalogue:
    """A catalogue from a YAML file path, a dict, or a :class:`ReasonCatalogue` (returned as is)."""
    if isinstance(source, ReasonCatalogue):
        return source
    if isinstance(source, Mapping):
        return ReasonCatalogue.from_dict(source)
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        if not path.is_file():
            raise CatalogueError(
                f"no catalogue file at {str(path)!r} (YAML text goes to ReasonCatalogue.from_yaml)"
            )
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            # A catalogue saved in another encoding: say so, not a decoding traceback.
            raise CatalogueError(
                f"the catalogue {str(path)!r} is not UTF-8 text (byte {exc.start}: {exc.reason})"
            ) from exc
        return ReasonCatalogue.from_yaml(text)
    raise CatalogueError(f"cannot read a catalogue from {type(source).__name__}")
