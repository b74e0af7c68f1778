"""A ``PYTHONSTARTUP`` file that instruments the interactive interpreter:

    export PYTHONSTARTUP="$(python -c 'import shellspan.startup as m; print(m.__file__)')"

The interpreter runs this file before its first prompt; it runs the instrumented console in
place of that prompt and exits the process when the console ends.
"""

from shellspan.auto import run_instrumented_repl

run_instrumented_repl()
