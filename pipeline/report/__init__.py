"""Report stage: `build.build_report` (every run → reports/), with aggregation, statistics and rendering."""
