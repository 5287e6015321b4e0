"""The report of a run: report.json and audit.jsonl (``run``), report.html rendered from Jinja2 templates
(``html``, with its plots in ``plots``), and a screenshot of it (``screenshot``)."""

from .html import render_report
from .run import make_report, render_html, update_run_report, write_audit_log

__all__ = ["make_report", "render_html", "render_report", "update_run_report", "write_audit_log"]
