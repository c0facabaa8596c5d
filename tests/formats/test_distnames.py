"""formats/distnames.py: distribution names compared as PEP 503 says, the same answer as
packaging's `canonicalize_name` for every spelling."""

from __future__ import annotations

import pytest
from packaging.utils import canonicalize_name

from carton_hook.formats.distnames import canonical_name


@pytest.mark.parametrize("name", ["Foo_Bar", "foo-bar", "FOO.bar", "foo__-.bar", "zope.interface",
                                  "Django", "a", "ruamel.yaml.clib", "typing_extensions"])
def test_a_name_is_normalised_as_packaging_does(name: str) -> None:
    assert canonical_name(name) == canonicalize_name(name)


def test_spellings_of_one_distribution_compare_equal_and_others_do_not() -> None:
    assert canonical_name("Foo_Bar") == canonical_name("foo.bar") == "foo-bar"
    assert canonical_name("foobar") != canonical_name("foo-bar")
