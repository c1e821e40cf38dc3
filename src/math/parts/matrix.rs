//! `{"matrix": [[…], …]}`: shape, sum, transpose, rank, and for square
//! matrices trace, determinant and inverse, all exact.

use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{One, Zero};
use serde_json::{json, Value};

use super::rational::{
    eliminate, fmt_q, from_json, hadamard_bits, json_f64, shown, to_int_rows, IntRows,
    MAX_JORDAN_BITS,
};
use super::{plural, PartAnalysis, PartError, PartLimits};

/// Longest inverse (as text) still shown in the summary line.
const MAX_SUMMARY_MATRIX: usize = 160;
/// Most digits in all entries of an inverse that is returned.
const MAX_INVERSE_DIGITS: u64 = 100_000;

/// Reads a matrix: a non-empty list of equally long, non-empty rows of numbers
/// (JSON numbers or numeric strings such as `"1/3"`), at most
/// `max_matrix_dim` rows and columns.
pub(super) fn parse(
    value: &Value,
    limits: &PartLimits,
) -> Result<Vec<Vec<BigRational>>, PartError> {
    let example = "e.g. [[1, 2], [3, 4]]";
    let Value::Array(rows) = value else {
        return Err(PartError::Invalid(format!(
            "a matrix must be a list of rows, {example}; found {}",
            shown(value)
        )));
    };
    let max = limits.max_matrix_dim;
    if rows.is_empty() {
        return Err(PartError::Invalid("the matrix is empty".to_string()));
    }
    if rows.len() > max {
        return Err(PartError::TooLarge(format!(
            "the matrix has {} rows; the maximum is {max}",
            rows.len()
        )));
    }
    let mut width = None;
    let mut cells = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        let Value::Array(row) = row else {
            return Err(PartError::Invalid(format!(
                "row {} is {}, not a list of numbers: a matrix is a list of rows, {example}",
                i + 1,
                shown(row)
            )));
        };
        if row.len() > max {
            return Err(PartError::TooLarge(format!(
                "row {} has {} entries; the maximum is {max}",
                i + 1,
                row.len()
            )));
        }
        if row.is_empty() {
            return Err(PartError::Invalid(format!("row {} is empty", i + 1)));
        }
        match width {
            None => width = Some(row.len()),
            Some(w) if w != row.len() => {
                return Err(PartError::Invalid(format!(
                    "row {} has {} {} but row 1 has {w}: all rows must have the same length",
                    i + 1,
                    row.len(),
                    plural(row.len(), "entry", "entries")
                )));
            }
            Some(_) => {}
        }
        cells.push(row);
    }
    let mut m = Vec::with_capacity(cells.len());
    for (i, row) in cells.into_iter().enumerate() {
        let mut out = Vec::with_capacity(row.len());
        for (j, v) in row.iter().enumerate() {
            let q = from_json(v)
                .map_err(|e| e.at(&format!("row {}, column {}", i + 1, j + 1), &shown(v)))?;
            out.push(q);
        }
        m.push(out);
    }
    Ok(m)
}

/// Analyses `{"matrix": value}`.
pub(super) fn analyze(value: &Value, limits: &PartLimits) -> Result<PartAnalysis, PartError> {
    let m = parse(value, limits)?;
    let (rows, cols) = (m.len(), m[0].len());
    let square = rows == cols;

    let sum = m
        .iter()
        .flatten()
        .fold(BigRational::zero(), |acc, q| acc + q);
    let transpose: Vec<Vec<BigRational>> = (0..cols)
        .map(|j| m.iter().map(|row| row[j].clone()).collect())
        .collect();

    let ints = to_int_rows(&m);
    let mut data = json!({
        "shape": [rows, cols],
        "square": square,
        "matrix": strings(&m),
        "sum": fmt_q(&sum),
        "sum_decimal": json_f64(&sum),
        "transpose": strings(&transpose),
    });
    // Rank and determinant by forward elimination.
    let forward = eliminate(ints.rows.clone(), cols, false)?;
    let rank = forward.rank();
    let summary = if square {
        let n = rows;
        let trace = (0..n).fold(BigRational::zero(), |acc, i| acc + &m[i][i]);
        let invertible = rank == n;
        let det = if invertible {
            let last = &forward.m[n - 1][n - 1];
            let det_b = if forward.swaps % 2 == 0 {
                last.clone()
            } else {
                -last
            };
            let scale = ints
                .scales
                .iter()
                .fold(BigRational::one(), |acc, s| acc * s);
            BigRational::from_integer(det_b) / scale
        } else {
            BigRational::zero()
        };
        let inverse = if invertible { inverse(&ints)? } else { None };
        if let Value::Object(map) = &mut data {
            map.insert("rank".into(), json!(rank));
            map.insert("trace".into(), json!(fmt_q(&trace)));
            map.insert("trace_decimal".into(), json_f64(&trace));
            map.insert("determinant".into(), json!(fmt_q(&det)));
            map.insert("determinant_decimal".into(), json_f64(&det));
            map.insert("invertible".into(), json!(invertible));
            map.insert(
                "inverse".into(),
                inverse
                    .as_ref()
                    .map_or(Value::Null, |inv| json!(strings(inv))),
            );
            map.insert(
                "inverse_decimal".into(),
                inverse.as_ref().map_or(Value::Null, |inv| {
                    Value::Array(
                        inv.iter()
                            .map(|row| Value::Array(row.iter().map(json_f64).collect()))
                            .collect(),
                    )
                }),
            );
            if invertible && inverse.is_none() {
                map.insert(
                    "inverse_note".into(),
                    json!("the inverse is not included: its entries would be too long"),
                );
            }
        }
        let tail = match &inverse {
            Some(inv) => {
                let shown = text(inv);
                if shown.len() <= MAX_SUMMARY_MATRIX {
                    format!(", inverse {shown}")
                } else {
                    ", invertible".to_string()
                }
            }
            None if invertible => ", invertible (the inverse is too large to show)".to_string(),
            None => " (singular: no inverse)".to_string(),
        };
        format!(
            "{n}×{n} matrix: sum {}, trace {}, rank {rank}, determinant {}{tail}",
            fmt_q(&sum),
            fmt_q(&trace),
            fmt_q(&det)
        )
    } else {
        if let Value::Object(map) = &mut data {
            map.insert("rank".into(), json!(rank));
            map.insert("determinant".into(), Value::Null);
            map.insert("invertible".into(), json!(false));
            map.insert("inverse".into(), Value::Null);
        }
        format!(
            "{rows}×{cols} matrix: sum {}, rank {rank}, transpose {} (not square: no \
             determinant or inverse)",
            fmt_q(&sum),
            if rows * cols <= 12 {
                text(&transpose)
            } else {
                format!("is {cols}×{rows}")
            }
        )
    };
    Ok(PartAnalysis {
        kind: "matrix",
        summary,
        data,
    })
}

/// The exact inverse of an invertible matrix given as integer rows
/// `B = S·A` (see [`to_int_rows`]), or `None` when its entries would be too
/// long (more than [`MAX_JORDAN_BITS`] in the Hadamard bound, or more than
/// [`MAX_INVERSE_DIGITS`] digits in all). Reduces `[B | I]` to `[D | X]` with
/// D diagonal: `B⁻¹ = D⁻¹·X`, and `A⁻¹ = B⁻¹·S`.
fn inverse(ints: &IntRows) -> Result<Option<Vec<Vec<BigRational>>>, PartError> {
    let n = ints.rows.len();
    let aug: Vec<Vec<BigInt>> = ints
        .rows
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let mut r = row.clone();
            r.extend((0..n).map(|j| {
                if i == j {
                    BigInt::one()
                } else {
                    BigInt::zero()
                }
            }));
            r
        })
        .collect();
    if hadamard_bits(&aug) > MAX_JORDAN_BITS {
        return Ok(None);
    }
    let red = eliminate(aug, n, true)?;
    if red.rank() < n {
        return Ok(None);
    }
    let inverse: Vec<Vec<BigRational>> = red
        .m
        .iter()
        .enumerate()
        .map(|(i, row)| {
            (0..n)
                .map(|j| BigRational::new(row[n + j].clone(), row[i].clone()) * &ints.scales[j])
                .collect()
        })
        .collect();
    // About 0.302 decimal digits per bit.
    let bits: u64 = inverse
        .iter()
        .flatten()
        .map(|q| q.numer().bits() + q.denom().bits())
        .sum();
    Ok((bits * 302 / 1000 <= MAX_INVERSE_DIGITS).then_some(inverse))
}

/// Every entry as exact text.
fn strings(m: &[Vec<BigRational>]) -> Vec<Vec<String>> {
    m.iter()
        .map(|row| row.iter().map(fmt_q).collect())
        .collect()
}

/// `[[1, 2], [3/2, -1]]`.
fn text(m: &[Vec<BigRational>]) -> String {
    let rows: Vec<String> = m
        .iter()
        .map(|row| {
            let cells: Vec<String> = row.iter().map(fmt_q).collect();
            format!("[{}]", cells.join(", "))
        })
        .collect();
    format!("[{}]", rows.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(v: Value) -> Result<PartAnalysis, PartError> {
        analyze(&v, &PartLimits::default())
    }

    #[test]
    fn two_by_two_determinant_is_exact() {
        let a = run(json!([[1, 2], [3, 4]])).unwrap();
        assert_eq!(a.kind, "matrix");
        assert_eq!(a.data["shape"], json!([2, 2]));
        assert_eq!(a.data["determinant"], "-2");
        assert_eq!(a.data["sum"], "10");
        assert_eq!(a.data["trace"], "5");
        assert_eq!(a.data["rank"], 2);
        assert_eq!(a.data["transpose"], json!([["1", "3"], ["2", "4"]]));
        assert_eq!(a.data["inverse"], json!([["-2", "1"], ["3/2", "-1/2"]]));
        assert_eq!(a.data["inverse_decimal"], json!([[-2.0, 1.0], [1.5, -0.5]]));
        assert_eq!(
            a.summary,
            "2×2 matrix: sum 10, trace 5, rank 2, determinant -2, inverse [[-2, 1], [3/2, -1/2]]"
        );
    }

    #[test]
    fn inverse_is_exact() {
        let a = run(json!([[4, 7], [2, 6]])).unwrap();
        assert_eq!(a.data["determinant"], "10");
        assert_eq!(
            a.data["inverse"],
            json!([["3/5", "-7/10"], ["-1/5", "2/5"]])
        );
        assert_eq!(a.data["invertible"], true);
    }

    #[test]
    fn three_by_three_with_floats() {
        let a = run(json!([[2.0, 0, 1], [1, 3, 2], [1, 1, 1]])).unwrap();
        // 2(3 - 2) - 0 + 1(1 - 3) = 0: singular despite floats.
        assert_eq!(a.data["determinant"], "0");
        assert_eq!(a.data["rank"], 2);
        assert_eq!(a.data["inverse"], Value::Null);
        let a = run(json!([[2.0, 0, 1], [1, 3, 2], [1, 1, 1.5]])).unwrap();
        // 2(4.5 - 2) - 0 + 1(1 - 3) = 3
        assert_eq!(a.data["determinant"], "3");
        assert_eq!(a.data["sum"], "25/2");
        assert_eq!(a.data["sum_decimal"], 12.5);
        assert_eq!(
            a.data["inverse"],
            json!([
                ["5/6", "1/3", "-1"],
                ["1/6", "2/3", "-1"],
                ["-2/3", "-2/3", "2"]
            ])
        );
    }

    #[test]
    fn decimals_are_read_as_written() {
        let a = run(json!([[0.1, 0.2], [0.3, 0.4]])).unwrap();
        // 0.04 - 0.06 = -0.02 exactly, not a binary approximation.
        assert_eq!(a.data["determinant"], "-1/50");
        assert_eq!(a.data["sum"], "1");
        let a = run(json!([["1/3", "0.5"], ["2", "-1e1"]])).unwrap();
        assert_eq!(a.data["determinant"], "-13/3");
    }

    #[test]
    fn singular_matrix_has_no_inverse() {
        let a = run(json!([[1, 2, 3], [2, 4, 6], [1, 0, 1]])).unwrap();
        assert_eq!(a.data["determinant"], "0");
        assert_eq!(a.data["rank"], 2);
        assert_eq!(a.data["invertible"], false);
        assert_eq!(a.data["inverse"], Value::Null);
        assert!(a.summary.contains("singular"), "{}", a.summary);
        let zero = run(json!([[0, 0], [0, 0]])).unwrap();
        assert_eq!(zero.data["rank"], 0);
    }

    #[test]
    fn non_square_matrix() {
        let a = run(json!([[1, 2, 3], [4, 5, 6]])).unwrap();
        assert_eq!(a.data["shape"], json!([2, 3]));
        assert_eq!(a.data["rank"], 2);
        assert_eq!(a.data["determinant"], Value::Null);
        assert_eq!(a.data["inverse"], Value::Null);
        assert_eq!(
            a.data["transpose"],
            json!([["1", "4"], ["2", "5"], ["3", "6"]])
        );
        assert!(a.summary.contains("not square"), "{}", a.summary);
        let col = run(json!([[1], [2], [3]])).unwrap();
        assert_eq!(col.data["rank"], 1);
    }

    #[test]
    fn needs_row_swaps() {
        let a = run(json!([[0, 1], [1, 0]])).unwrap();
        assert_eq!(a.data["determinant"], "-1");
        assert_eq!(a.data["inverse"], json!([["0", "1"], ["1", "0"]]));
        let a = run(json!([[0, 0, 2], [0, 3, 0], [5, 0, 0]])).unwrap();
        assert_eq!(a.data["determinant"], "-30");
        assert_eq!(
            a.data["inverse"],
            json!([["0", "0", "1/5"], ["0", "1/3", "0"], ["1/2", "0", "0"]])
        );
    }

    #[test]
    fn inverse_times_matrix_is_identity() {
        let mut seed: u64 = 42;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 33) % 19) as i64 - 9
        };
        for n in 1..=6 {
            for _ in 0..10 {
                let rows: Vec<Vec<Value>> = (0..n)
                    .map(|_| {
                        (0..n)
                            .map(|_| json!(format!("{}/{}", next(), 1 + next().abs())))
                            .collect()
                    })
                    .collect();
                let v = json!(rows);
                let a = run(v.clone()).unwrap();
                let m = parse(&v, &PartLimits::default()).unwrap();
                let Some(inv) = a.data["inverse"].as_array() else {
                    assert_eq!(a.data["determinant"], "0");
                    continue;
                };
                let inv: Vec<Vec<BigRational>> = inv
                    .iter()
                    .map(|r| {
                        r.as_array()
                            .unwrap()
                            .iter()
                            .map(|x| from_json(x).unwrap())
                            .collect()
                    })
                    .collect();
                for (i, row) in m.iter().enumerate() {
                    for j in 0..n {
                        let dot = row
                            .iter()
                            .zip(&inv)
                            .fold(BigRational::zero(), |acc, (a, b)| acc + a * &b[j]);
                        let want = if i == j {
                            BigRational::one()
                        } else {
                            BigRational::zero()
                        };
                        assert_eq!(dot, want, "{v}");
                    }
                }
            }
        }
    }

    #[test]
    fn bad_matrices_are_rejected() {
        let kind = |v: Value| run(v).unwrap_err().kind();
        assert_eq!(kind(json!([[1, 2], [3]])), "invalid");
        assert_eq!(kind(json!([])), "invalid");
        assert_eq!(kind(json!([[]])), "invalid");
        assert_eq!(kind(json!([1, 2, 3])), "invalid");
        assert_eq!(kind(json!("1 2; 3 4")), "invalid");
        assert_eq!(kind(json!([[1, "x"], [3, 4]])), "invalid");
        assert_eq!(kind(json!([[1, null], [3, 4]])), "invalid");
        let e = run(json!([[1, 2], [3]])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid input: row 2 has 1 entry but row 1 has 2: all rows must have the same length"
        );
        let e = run(json!([[1, true]])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid input: row 1, column 2: expected a number, found true"
        );
        let big: Vec<Vec<i32>> = vec![vec![1; 21]; 21];
        assert_eq!(kind(json!(big)), "too_large");
        let wide: Vec<Vec<i32>> = vec![vec![1; 21]];
        assert_eq!(kind(json!(wide)), "too_large");
        assert_eq!(kind(json!([["1e9999"]])), "too_large");
    }

    #[test]
    fn largest_matrices_stay_fast() {
        let mut seed: u64 = 1;
        let mut digits = |n: usize| -> String {
            (0..n)
                .map(|_| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    char::from(b'1' + ((seed >> 33) % 9) as u8)
                })
                .collect()
        };
        // 20×20 with 60-digit entries: determinant yes, inverse too long.
        let rows: Vec<Vec<String>> = (0..20)
            .map(|_| (0..20).map(|_| digits(60)).collect())
            .collect();
        let a = run(json!(rows)).unwrap();
        assert_eq!(a.data["rank"], 20);
        assert_eq!(a.data["invertible"], true);
        assert_eq!(a.data["inverse"], Value::Null);
        assert!(a.data["inverse_note"].is_string());
        assert!(a.data["determinant"].as_str().unwrap().len() > 1000);
        // 12×12 with 40-digit entries: the inverse is computed but too long to return.
        let rows: Vec<Vec<String>> = (0..12)
            .map(|_| (0..12).map(|_| digits(40)).collect())
            .collect();
        let a = run(json!(rows)).unwrap();
        assert_eq!(a.data["invertible"], true);
        assert_eq!(a.data["inverse"], Value::Null);
        assert!(a.summary.contains("too large"), "{}", a.summary);
        // Entries that could make minors of more than ~4 900 digits are refused.
        let rows: Vec<Vec<String>> = (0..20)
            .map(|_| (0..20).map(|_| format!("{}e250", digits(60))).collect())
            .collect();
        let rows: Vec<Vec<String>> = rows
            .into_iter()
            .enumerate()
            .map(|(i, mut r)| {
                r[i] = "1".to_string();
                r
            })
            .collect();
        assert_eq!(run(json!(rows)).unwrap_err().kind(), "too_large");
        let hilbert: Vec<Vec<String>> = (1..=20)
            .map(|i| (1..=20).map(|j| format!("1/{}", i + j - 1)).collect())
            .collect();
        let a = run(json!(hilbert)).unwrap();
        assert_eq!(a.data["rank"], 20);
        assert_eq!(a.data["inverse"][0][0], "400");
    }
}
