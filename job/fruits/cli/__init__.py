"""fruitsctl, the command-line interface (typer): the commands and exit codes (`main`), one
module per command group (`run`, `cluster`, `results`, `upload`), options generated from the
settings (`options`), the help pages (`help`), all Rich output (`console`) and the quiet
terminal of a run (`chatter`). A command imports its libraries when it runs, so fruitsctl
starts light and the base install runs the cluster and S3 commands (`extras` names what the
others need).
"""
