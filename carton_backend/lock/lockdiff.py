"""What a `lock` changed, said as `uv lock` says it: one line per package that was added,
removed or moved to another version, per lock section; or that the lock was current."""

from __future__ import annotations

from carton_hook.formats.lockfile import Lock


def describe_changes(before: Lock | None, after: Lock) -> list[str]:
    """Lines for the user: `before` is the lock as it was (None: there was none)."""
    if before is not None and before.to_json() == after.to_json():
        counts = ", ".join(f"{len(e.packages)} packages for {e.id}" for e in after.environments)
        return [f"the lock is current ({counts}); nothing to resolve"]
    lines: list[str] = []
    added = False
    old_sections = {e.id: e for e in before.environments} if before is not None else {}
    for env in after.environments:
        old = old_sections.pop(env.id, None)
        if old is None:  # a new section: locking said how many packages it holds
            added = True
            continue
        was = {p.name: p.version for p in old.packages}
        now = {p.name: p.version for p in env.packages}
        for name in sorted(was.keys() | now.keys()):
            if name not in was:
                lines.append(f"{env.id}: added {name} {now[name]}")
            elif name not in now:
                lines.append(f"{env.id}: removed {name} {was[name]}")
            elif was[name] != now[name]:
                lines.append(f"{env.id}: updated {name} {was[name]} -> {now[name]}")
    for gone in old_sections:
        lines.append(f"{gone}: section dropped")
    if not lines and not added and before is not None:
        lines.append("the lock was rewritten; no package changed version")
    return lines
