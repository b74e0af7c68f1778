//! shellspan_sink_accel: a compiled twin of `shellspan_sink.rowbinary.encode_request`.

mod encode;
mod wire;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};
use std::collections::HashSet;

/// encode_request(body, identity, max_attributes, max_attribute_length,
///                min_time_ns=0, max_time_ns=2**64-1, skip=None)
/// -> (chunks: [(day, rowbinary: bytes, rows)], rows: int, rejected_ids: int, rejected_time: int,
///     traces: dict[str, int])
///
/// Convert a serialized OTLP ExportTraceServiceRequest into RowBinary rows of `otel_traces`,
/// grouped by the UTC day spans start on, byte-identical to the pure-Python reference. Spans
/// outside the time window are refused; those in it are counted per trace id (lowercase hex), and
/// spans of the trace ids in `skip` are counted but not written. Raises ValueError for an
/// undecodable body.
#[pyfunction]
#[allow(clippy::too_many_arguments)] // the Python signature
#[pyo3(signature = (body, identity, max_attributes, max_attribute_length,
                    min_time_ns=0, max_time_ns=u64::MAX, skip=None))]
fn encode_request<'py>(
    py: Python<'py>,
    body: &Bound<'py, PyAny>,
    identity: Option<&Bound<'py, PyAny>>,
    max_attributes: i64,
    max_attribute_length: i64,
    min_time_ns: u64,
    max_time_ns: u64,
    skip: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyTuple>> {
    // Immutable bytes can be read without the GIL; anything else bytes-like is copied first.
    let body: Bound<'py, PyBytes> = match body.downcast::<PyBytes>() {
        Ok(b) => b.clone(),
        Err(_) => py
            .import("builtins")?
            .getattr("bytes")?
            .call1((body,))?
            .downcast_into::<PyBytes>()?,
    };
    let mut pairs: Vec<(String, String)> = Vec::new();
    if let Some(identity) = identity {
        if identity.is_truthy()? {
            for item in identity.call_method0("items")?.try_iter()? {
                pairs.push(item?.extract()?);
            }
        }
    }
    let mut skipped: HashSet<[u8; 32]> = HashSet::new();
    if let Some(skip) = skip {
        if skip.is_truthy()? {
            for item in skip.try_iter()? {
                let text: String = item?.extract()?;
                // Only a lowercase hex trace id can match one.
                if let Ok(trace_hex) = <[u8; 32]>::try_from(text.as_bytes()) {
                    skipped.insert(trace_hex);
                }
            }
        }
    }
    let data = body.as_bytes();
    let result = py.allow_threads(|| {
        let opts = encode::Options {
            identity: pairs.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())).collect(),
            max_attributes,
            max_attribute_length,
            min_time: min_time_ns,
            max_time: max_time_ns,
            skip: skipped,
        };
        encode::encode_request(data, &opts)
    });
    match result {
        Ok(encoded) => {
            let chunks = PyList::empty(py);
            for chunk in &encoded.chunks {
                chunks.append(PyTuple::new(py, [
                    chunk.day.into_pyobject(py)?.into_any(),
                    PyBytes::new(py, &chunk.data).into_any(),
                    chunk.rows.into_pyobject(py)?.into_any(),
                ])?)?;
            }
            let counts = PyDict::new(py);
            for trace_hex in &encoded.traces.order {
                // Hex digits are ASCII.
                let key = std::str::from_utf8(trace_hex).expect("hex is ASCII");
                counts.set_item(key, encoded.traces.counts[trace_hex])?;
            }
            PyTuple::new(py, [
                chunks.into_any(),
                encoded.rows.into_pyobject(py)?.into_any(),
                encoded.rejected_ids.into_pyobject(py)?.into_any(),
                encoded.rejected_time.into_pyobject(py)?.into_any(),
                counts.into_any(),
            ])
        }
        Err(err) => Err(PyValueError::new_err(format!(
            "body is not a valid ExportTraceServiceRequest: {err}"
        ))),
    }
}

#[pymodule]
fn shellspan_sink_accel(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(encode_request, m)?)?;
    Ok(())
}
