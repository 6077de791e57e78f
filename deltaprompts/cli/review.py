"""The command that opens a run for review by eye: `review`."""

from __future__ import annotations

from pathlib import Path

import typer

from deltaprompts.cli.app import app, handles_errors, out


@app.command()
@handles_errors
def review(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    port: int = typer.Option(0, "--port", min=0, max=65535, help="Port on 127.0.0.1 (0: any free port)."),
    no_open: bool = typer.Option(False, "--no-open", help="Do not open the page in a web browser."),
    limit: int = typer.Option(500, min=1, help="Most items on the page (round-robin over families)."),
) -> None:
    """Serve the run's gallery on 127.0.0.1 with accept / reject and a note per item (saved to RUN/review.jsonl).

    screen, split and export leave rejected items out and say how many. Stop with Ctrl-C.
    """
    from deltaprompts.errors import UserError
    from deltaprompts.review import ReviewServer
    from deltaprompts.review_log import REVIEW_FILE

    try:
        server = ReviewServer(run_dir, port=port, limit=limit)
    except OSError as e:
        raise UserError(f"cannot listen on 127.0.0.1:{port}: {e.strerror or e}; choose another --port") from None
    out.print(f"reviewing {run_dir} at {server.url} (decisions: {Path(run_dir) / REVIEW_FILE}); Ctrl-C to stop")
    if not no_open:
        import webbrowser

        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        out.print("stopped")
    finally:
        server.server_close()
