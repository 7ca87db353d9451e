"""The demo's report: an HTML page with inlined PNG figures, and the figures themselves.

`HtmlReport` builds a self-contained page; `plots` draws line charts, heat maps and image
grids with matplotlib (Agg canvas, no GUI backend) and renders them as RGB images;
`DemoReport` turns the demo's runs into the results table, `report.html` and `plots/*.png`;
`run_samples` computes what the report shows from a trained task and model (captions,
retrieval examples, confusion matrices) on Shapes or real data; `run_report` writes the
report of one run (`mmkeras train`, `mmkeras eval`) and returns its results table.
"""

from mmkeras.report.demo_report import DemoReport
from mmkeras.report.html_report import HtmlReport, png_data_uri, read_html_report
from mmkeras.report.plots import encode_png, heatmap, image_grid, line_plot, render, stack
from mmkeras.report.run_report import add_run_samples, write_run_report
from mmkeras.report.run_samples import (
    caption_samples, confusion_matrix, fusion_confusion, fusion_heads, retrieval_samples,
)
