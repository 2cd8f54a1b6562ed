"""The service's start-up leaves no full garbage collection for its first requests."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_startup_collects_and_freezes_the_loaded_objects(serve_bundles, tmp_path):
    """After the app's start (the lifespan), what start-up loaded is frozen out of later
    collections and no garbage is left for a request to collect. In a process of its own:
    freezing is for the whole interpreter."""
    code = textwrap.dedent(
        f"""
        import asyncio, gc
        from nba.serve.app import ServeConfig, create_app

        app = create_app(ServeConfig(bundle={str(serve_bundles[0])!r},
                                     history={str(tmp_path / "h.sqlite")!r}))

        async def main():
            async with app.router.lifespan_context(app):
                print(gc.get_freeze_count(), gc.collect())

        asyncio.run(main())
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    frozen, garbage = map(int, out.stdout.split())
    assert frozen > 100_000, f"only {frozen:,} objects frozen"
    assert garbage < 20, f"{garbage:,} unreachable objects left after the start"
