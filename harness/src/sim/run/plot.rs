//! `--plot`: an SVG of ordered-result latency and cumulative drops over the run.

use std::path::Path;

use plotters::prelude::*;

use super::report::SimReport;
use crate::sim::Res;

/// Writes the plot of `r`'s timeline to `path`.
///
/// # Errors
/// When the file cannot be written.
pub fn write_svg(r: &SimReport, path: &Path) -> Res<()> {
    let t_max = r.timeline.iter().map(|p| p.t_s).fold(1.0, f64::max);
    let l_max = r.timeline.iter().filter_map(|p| p.latency_ms).fold(1.0, f64::max) * 1.1;
    let d_max = r.timeline.iter().map(|p| p.dropped).max().unwrap_or(0).max(1) as f64 * 1.1;
    let root = SVGBackend::new(path, (960, 540)).into_drawing_area();
    let draw = |e: Box<dyn std::error::Error + Send + Sync>| e;
    root.fill(&WHITE).map_err(|e| draw(e.to_string().into()))?;
    let title = format!(
        "{} x {} {}, {}: latency (ms, left) and drops (right)",
        r.workers,
        r.profile,
        r.geometry,
        r.preset.clone().unwrap_or_else(|| r.policy.clone())
    );
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .right_y_label_area_size(60)
        .build_cartesian_2d(0.0..t_max, 0.0..l_max)
        .map_err(|e| draw(e.to_string().into()))?
        .set_secondary_coord(0.0..t_max, 0.0..d_max);
    chart
        .configure_mesh()
        .x_desc("time since the first frame (s)")
        .y_desc("capture -> ordered result (ms)")
        .draw()
        .map_err(|e| draw(e.to_string().into()))?;
    chart
        .configure_secondary_axes()
        .y_desc("frames dropped (cumulative)")
        .draw()
        .map_err(|e| draw(e.to_string().into()))?;
    chart
        .draw_series(LineSeries::new(r.timeline.iter().filter_map(|p| Some((p.t_s, p.latency_ms?))), &BLUE))
        .map_err(|e| draw(e.to_string().into()))?
        .label("latency")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLUE));
    chart
        .draw_secondary_series(LineSeries::new(r.timeline.iter().map(|p| (p.t_s, p.dropped as f64)), &RED))
        .map_err(|e| draw(e.to_string().into()))?
        .label("dropped")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], RED));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| draw(e.to_string().into()))?;
    root.present().map_err(|e| draw(e.to_string().into()))?;
    Ok(())
}
