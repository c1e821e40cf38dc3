//! Linear equations in any number of unknowns: unique, none or infinitely
//! many solutions.

use std::collections::BTreeSet;

use num_rational::BigRational;
use num_traits::Zero;
use serde_json::{json, Map, Value};

use super::format::{join_terms, with_decimal};
use super::poly::Poly;
use super::solve::base_data;
use crate::math::parts::rational::{eliminate, fmt_q, json_f64, to_int_rows};
use crate::math::parts::{shorten, PartAnalysis, PartError};

/// Linear equations in any number of unknowns, by exact elimination.
pub(super) fn linear_system(
    inputs: Vec<String>,
    polys: &[Poly],
    used: &[usize],
    names: &[String],
) -> Result<PartAnalysis, PartError> {
    let n = used.len();
    let rows: Vec<Vec<BigRational>> = polys
        .iter()
        .map(|p| {
            let mut row: Vec<BigRational> = used.iter().map(|&v| p.coef(&[(v, 1)])).collect();
            row.push(-p.coef(&[]));
            row
        })
        .collect();
    let ints = to_int_rows(&rows);
    let red = eliminate(ints.rows, n, true)?;
    let rank = red.rank();
    let vars: Vec<&str> = used.iter().map(|&v| names[v].as_str()).collect();
    let kind = if polys.len() > 1 {
        "system"
    } else if n == 0 {
        "constant"
    } else {
        "linear"
    };
    let poly_refs: Vec<&Poly> = polys.iter().collect();
    let mut data = base_data(kind, &inputs, &poly_refs, &vars, names);
    data.insert("rank".into(), json!(rank));
    let shown_inputs = shorten(&inputs.join(", "), 120);
    let inconsistent = red.m[rank..].iter().any(|row| !row[n].is_zero());
    let summary = if inconsistent {
        data.insert("status".into(), json!("none"));
        data.insert("solution".into(), Value::Null);
        if n == 0 {
            format!("{shown_inputs}: never true, so there is no solution")
        } else if polys.len() == 1 {
            format!("{shown_inputs}: no solution")
        } else {
            format!("{shown_inputs}: no solution (the equations are inconsistent)")
        }
    } else if rank == n && n > 0 {
        let mut exact = Map::new();
        let mut decimal = Map::new();
        let mut parts = Vec::new();
        for (i, &c) in red.pivots.iter().enumerate() {
            let x = BigRational::new(red.m[i][n].clone(), red.m[i][c].clone());
            exact.insert(vars[c].to_string(), json!(fmt_q(&x)));
            decimal.insert(vars[c].to_string(), json_f64(&x));
            parts.push(format!("{} = {}", vars[c], with_decimal(&x)));
        }
        data.insert("status".into(), json!("unique"));
        data.insert("solution".into(), Value::Object(exact));
        data.insert("solution_decimal".into(), Value::Object(decimal));
        format!("{shown_inputs}: {}", parts.join(", "))
    } else if n == 0 {
        data.insert("status".into(), json!("all"));
        data.insert("solution".into(), Value::Null);
        format!("{shown_inputs}: always true")
    } else {
        let pivot_set: BTreeSet<usize> = red.pivots.iter().copied().collect();
        let free: Vec<usize> = (0..n).filter(|j| !pivot_set.contains(j)).collect();
        let mut general = Map::new();
        let mut parts = Vec::new();
        for (i, &c) in red.pivots.iter().enumerate() {
            let p = &red.m[i][c];
            let mut terms = Vec::new();
            let constant = BigRational::new(red.m[i][n].clone(), p.clone());
            if !constant.is_zero() {
                terms.push((constant, String::new()));
            }
            for &j in &free {
                let q = BigRational::new(-red.m[i][j].clone(), p.clone());
                if !q.is_zero() {
                    terms.push((q, vars[j].to_string()));
                }
            }
            let expr = join_terms(&terms);
            parts.push(format!("{} = {expr}", vars[c]));
            general.insert(vars[c].to_string(), json!(expr));
        }
        let free_names: Vec<&str> = free.iter().map(|&j| vars[j]).collect();
        data.insert("status".into(), json!("infinite"));
        data.insert("solution".into(), Value::Null);
        data.insert("general_solution".into(), Value::Object(general));
        data.insert("free_variables".into(), json!(free_names));
        let free_text = format!(
            "{} {}",
            free_names.join(", "),
            if free_names.len() == 1 {
                "is free"
            } else {
                "are free"
            }
        );
        if parts.is_empty() {
            format!(
                "{shown_inputs}: always true: every value of {} is a solution",
                free_names.join(", ")
            )
        } else {
            format!(
                "{shown_inputs}: infinitely many solutions: {} ({free_text})",
                parts.join(", ")
            )
        }
    };
    Ok(PartAnalysis {
        kind: "equation",
        summary,
        data: Value::Object(data),
    })
}
