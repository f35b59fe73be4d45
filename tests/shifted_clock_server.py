"""Test-only launcher: `streamlit run` with the app's clock moved on by a number of seconds read from a file.

    python -m tests.shifted_clock_server OFFSET_FILE run app.py --server.port 8501 ...

`services.clock.now` is replaced, in this process only, by the real time plus the seconds the file
holds (read at every call; 0 when the file is empty or unreadable), then Streamlit's own command
line runs in the same process, so every page and service reads the shifted time. A browser test
writes the file (`LiveApp.move_clock`) to pass an idle time-out of minutes in a moment. Nothing in
the app imports this: it is never part of production.
"""

import sys
from datetime import datetime, timedelta
from pathlib import Path


def shift_the_clock(offset_file: Path) -> None:
    from services import clock

    real_now = clock.now

    def shifted_now() -> datetime:
        try:
            seconds = float(offset_file.read_text() or 0)
        except (OSError, ValueError):
            seconds = 0.0
        return real_now() + timedelta(seconds=seconds)

    clock.now = shifted_now


def main() -> None:
    offset_file, streamlit_arguments = Path(sys.argv[1]), sys.argv[2:]
    shift_the_clock(offset_file)
    from streamlit.web import cli

    sys.argv = ["streamlit", *streamlit_arguments]
    cli.main(prog_name="streamlit")


if __name__ == "__main__":
    main()
