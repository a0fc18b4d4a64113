"""fruitsctl's help pages: click's plain formatter, with the options and the commands under
their panels (Job options, Cluster options, Kubernetes; Cluster). Typer's Rich help imports
Markdown and traceback rendering (pygments) for every --help: 0.08 s of a 0.3 s start."""

from typer.core import TyperCommand, TyperGroup


def _panelled(formatter, rows_by_panel: dict[str, list]) -> None:
    for panel, rows in rows_by_panel.items():
        with formatter.section(panel):
            formatter.write_dl(rows)


def _option_panels(command, ctx) -> dict[str, list]:
    panels: dict[str, list] = {"Arguments": [], "Options": []}  # then the panels, in the order met
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is not None:
            default = "Arguments" if param.param_type_name == "argument" else "Options"
            panels.setdefault(getattr(param, "rich_help_panel", None) or default, []).append(record)
    return {panel: rows for panel, rows in panels.items() if rows}


class PanelledCommand(TyperCommand):
    def format_options(self, ctx, formatter) -> None:
        _panelled(formatter, _option_panels(self, ctx))


class PanelledGroup(TyperGroup):
    def format_options(self, ctx, formatter) -> None:
        _panelled(formatter, _option_panels(self, ctx))
        self.format_commands(ctx, formatter)

    def format_commands(self, ctx, formatter) -> None:
        found = [(name, self.get_command(ctx, name)) for name in self.list_commands(ctx)]
        commands = [(name, command) for name, command in found if command is not None and not command.hidden]
        if not commands:
            return
        limit = formatter.width - 6 - max(len(name) for name, _ in commands)
        panels: dict[str, list] = {}
        for name, command in commands:
            panel = getattr(command, "rich_help_panel", None) or "Commands"
            panels.setdefault(panel, []).append((name, command.get_short_help_str(limit)))
        _panelled(formatter, panels)
