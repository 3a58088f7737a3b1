"""The feasibility report rendered: the page and the PDF share `html.report_context` (with the SVG flow diagram and
recruitment chart of `svg`), Excel is `xlsx`, CSV is `csvzip`. Each takes a `reports.tables.Report` and formats it in
the active language; none computes a number."""
