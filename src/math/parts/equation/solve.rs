//! Which solver an equation set goes to, and the data every answer shares.

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};

use super::format::{fmt_poly_eq, with_decimal};
use super::higher::polynomial;
use super::poly::Poly;
use super::quadratic::quadratic;
use super::system::linear_system;
use crate::math::parts::rational::{fmt_q, json_f64};
use crate::math::parts::{shorten, PartAnalysis, PartError, PartLimits};

pub(super) fn solve(
    inputs: Vec<String>,
    polys: Vec<Poly>,
    names: &[String],
    limits: &PartLimits,
) -> Result<PartAnalysis, PartError> {
    let used: Vec<usize> = polys
        .iter()
        .flat_map(Poly::unknowns)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if used.len() > limits.max_matrix_dim {
        return Err(PartError::TooLarge(format!(
            "{} unknowns; the maximum is {}",
            used.len(),
            limits.max_matrix_dim
        )));
    }
    if polys.len() == 1 && used.len() == 1 {
        let p = &polys[0];
        let v = used[0];
        match p.degree() {
            1 => return Ok(linear(&inputs[0], p, v, names)),
            2 => return Ok(quadratic(&inputs[0], p, v, names)),
            _ => return polynomial(&inputs[0], p, v, names),
        }
    }
    if let Some(k) = polys.iter().position(|p| p.degree() > 1) {
        return Err(PartError::Unsupported(if polys.len() == 1 {
            format!(
                "'{}' is not linear: equations in several unknowns are solved only when linear",
                shorten(&inputs[0], 60)
            )
        } else {
            format!(
                "equation {} ('{}') is not linear: only systems of linear equations are solved",
                k + 1,
                shorten(&inputs[k], 60)
            )
        }));
    }
    linear_system(inputs, &polys, &used, names)
}

pub(super) fn base_data(
    kind: &str,
    inputs: &[String],
    polys: &[&Poly],
    vars: &[&str],
    names: &[String],
) -> Map<String, Value> {
    let mut data = Map::new();
    data.insert("type".into(), json!(kind));
    if inputs.len() == 1 {
        data.insert("input".into(), json!(inputs[0]));
        data.insert("normalized".into(), json!(fmt_poly_eq(polys[0], names)));
    } else {
        data.insert("input".into(), json!(inputs));
        let normalized: Vec<String> = polys.iter().map(|p| fmt_poly_eq(p, names)).collect();
        data.insert("normalized".into(), json!(normalized));
    }
    data.insert("variables".into(), json!(vars));
    data
}

/// `a·x + b = 0`.
fn linear(input: &str, p: &Poly, v: usize, names: &[String]) -> PartAnalysis {
    let a = p.coef(&[(v, 1)]);
    let b = p.coef(&[]);
    let x = -b / a;
    let name = names[v].as_str();
    let mut data = base_data("linear", &[input.to_string()], &[p], &[name], names);
    data.insert("status".into(), json!("unique"));
    data.insert("solution".into(), json!({ name: fmt_q(&x) }));
    data.insert("solution_decimal".into(), json!({ name: json_f64(&x) }));
    PartAnalysis {
        kind: "equation",
        summary: format!("{}: {name} = {}", shorten(input, 80), with_decimal(&x)),
        data: Value::Object(data),
    }
}
