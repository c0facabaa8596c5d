"""carton_backend.lock.lockdiff: what a `lock` changed, one line per package added, removed or
moved to another version in each section, or that the lock was current."""

from __future__ import annotations

import hashlib

from carton_backend.lock.lockdiff import describe_changes
from carton_hook.formats.lockfile import Environment, Lock, Package, Wheel

LINUX = "cp311-linux-x86_64"
MAC = "cp311-darwin-arm64"


def package(name: str, version: str, url_host: str = "files.example.org") -> Package:
    filename = f"{name}-{version}-py3-none-any.whl"
    sha = hashlib.sha256(filename.encode()).hexdigest()
    return Package(name, version, Wheel(filename, sha, 100, url=f"https://{url_host}/{filename}"),
                   requested=True)


def section(env_id: str, *packages: Package) -> Environment:
    return Environment(env_id, f"sys_platform == '{env_id}'", {"python_version": "3.11"},
                       packages)


def lock(*sections: Environment) -> Lock:
    return Lock("requirements.txt", "0" * 64, sections, created_by="carton 0.1.0")


def test_an_unchanged_lock_is_current_with_what_each_section_holds() -> None:
    before = lock(section(LINUX, package("alpha", "1.0"), package("beta", "2.0")),
                  section(MAC, package("alpha", "1.0")))
    after = lock(section(LINUX, package("alpha", "1.0"), package("beta", "2.0")),
                 section(MAC, package("alpha", "1.0")))
    assert describe_changes(before, after) == [
        f"the lock is current (2 packages for {LINUX}, 1 packages for {MAC}); nothing to resolve"]


def test_a_first_lock_says_nothing_per_package() -> None:
    """Locking reports how many packages each new section holds; no line per package."""
    assert describe_changes(None, lock(section(LINUX, package("alpha", "1.0")))) == []


def test_added_removed_and_updated_packages_are_listed_by_name() -> None:
    before = lock(section(LINUX, package("zeta", "1.0"), package("beta", "1.0"),
                          package("alpha", "1.0"), package("same", "3.0")))
    after = lock(section(LINUX, package("alpha", "1.1"), package("same", "3.0"),
                         package("gamma", "0.5"), package("beta", "0.9")))
    assert describe_changes(before, after) == [
        f"{LINUX}: updated alpha 1.0 -> 1.1",
        f"{LINUX}: updated beta 1.0 -> 0.9",  # a downgrade is said the same way
        f"{LINUX}: added gamma 0.5",
        f"{LINUX}: removed zeta 1.0",
    ]


def test_each_section_is_compared_with_its_own_old_section() -> None:
    before = lock(section(LINUX, package("alpha", "1.0")), section(MAC, package("alpha", "2.0")))
    after = lock(section(LINUX, package("alpha", "2.0")), section(MAC, package("alpha", "2.0")))
    assert describe_changes(before, after) == [f"{LINUX}: updated alpha 1.0 -> 2.0"]


def test_a_new_section_beside_old_ones_is_not_described_package_by_package() -> None:
    before = lock(section(LINUX, package("alpha", "1.0")))
    after = lock(section(LINUX, package("alpha", "1.0"), package("beta", "1.0")),
                 section(MAC, package("alpha", "1.0")))
    assert describe_changes(before, after) == [f"{LINUX}: added beta 1.0"]


def test_only_a_new_section_says_nothing_more() -> None:
    """Locking said how many packages the new section holds; "rewritten, no package
    changed" would only puzzle."""
    before = lock(section(LINUX, package("alpha", "1.0")))
    after = lock(section(LINUX, package("alpha", "1.0")), section(MAC, package("alpha", "1.0")))
    assert describe_changes(before, after) == []


def test_a_section_that_went_is_said_to_be_dropped_after_the_changes() -> None:
    before = lock(section(MAC, package("alpha", "1.0")), section(LINUX, package("alpha", "1.0")))
    after = lock(section(LINUX, package("alpha", "1.1")))
    assert describe_changes(before, after) == [f"{LINUX}: updated alpha 1.0 -> 1.1",
                                               f"{MAC}: section dropped"]


def test_a_rewritten_lock_with_the_same_versions_says_so() -> None:
    """Same versions, but a wheel now found elsewhere (bundled, another index): the lock
    changed, no package did."""
    before = lock(section(LINUX, package("alpha", "1.0")))
    after = lock(section(LINUX, package("alpha", "1.0", url_host="mirror.example.org")))
    assert describe_changes(before, after) == [
        "the lock was rewritten; no package changed version"]
