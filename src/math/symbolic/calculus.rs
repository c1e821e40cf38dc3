//! Derivatives (sum, product, power and chain rules, every function of
//! the parser) and antiderivatives (polynomials, and the standard table with
//! a linear inner function: `sin(3x + 1)`, `e^(2x)`, `1/(2x + 1)`).

use num_rational::BigRational;
use num_traits::{One, Zero};

use super::expr::{from_poly, int, num, simplify, Expr, Func};
use crate::math::MathError;

/// The derivative of `e` (not simplified).
pub(super) fn diff(e: &Expr) -> Expr {
    match e {
        Expr::Num(_) | Expr::Pi | Expr::E => int(0),
        Expr::Var => int(1),
        Expr::Add(ts) => Expr::Add(ts.iter().map(diff).collect()),
        Expr::Mul(fs) => Expr::Add(
            (0..fs.len())
                .filter(|&i| fs[i].has_var())
                .map(|i| {
                    let mut term: Vec<Expr> = fs.clone();
                    term[i] = diff(&fs[i]);
                    Expr::Mul(term)
                })
                .collect(),
        ),
        Expr::Pow(b, x) if !x.has_var() => {
            // (b^n)' = n·b^(n-1)·b'
            let lower = Expr::Add(vec![(**x).clone(), int(-1)]);
            Expr::Mul(vec![(**x).clone(), (**b).clone().pow(lower), diff(b)])
        }
        Expr::Pow(b, x) if !b.has_var() => {
            // (c^u)' = c^u·ln(c)·u'
            Expr::Mul(vec![
                e.clone(),
                Expr::call(Func::Ln, (**b).clone()),
                diff(x),
            ])
        }
        Expr::Pow(b, x) => {
            // (b^u)' = b^u·(u'·ln(b) + u·b'/b)
            let inner = Expr::Add(vec![
                Expr::Mul(vec![diff(x), Expr::call(Func::Ln, (**b).clone())]),
                Expr::Mul(vec![(**x).clone(), diff(b), (**b).clone().pow(int(-1))]),
            ]);
            Expr::Mul(vec![e.clone(), inner])
        }
        Expr::Call(f, a) => {
            let a0 = (**a).clone();
            let outer = match f {
                Func::Sin => Expr::call(Func::Cos, a0),
                Func::Cos => Expr::call(Func::Sin, a0).neg(),
                Func::Tan => Expr::call(Func::Cos, a0).pow(int(-2)),
                Func::Exp => e.clone(),
                Func::Ln => a0.pow(int(-1)),
                // |u|' = u/|u|
                Func::Abs => Expr::Mul(vec![a0.clone(), Expr::call(Func::Abs, a0).pow(int(-1))]),
                Func::Atan => Expr::Add(vec![int(1), a0.pow(int(2))]).pow(int(-1)),
            };
            Expr::Mul(vec![outer, diff(a)])
        }
    }
}

/// `(a, b)` when `e` is `a·x + b` with `a ≠ 0`.
fn linear(e: &Expr) -> Option<(BigRational, BigRational)> {
    let p = e.poly(1)?;
    match p.as_slice() {
        [b, a] if !a.is_zero() => Some((a.clone(), b.clone())),
        _ => None,
    }
}

/// `F / a`, for an inner function `a·x + b`.
fn over(f: Expr, a: &BigRational) -> Expr {
    Expr::Mul(vec![num(a.recip()), f])
}

/// An antiderivative of `e` (not simplified), or why there is none in the table.
pub(super) fn integrate(e: &Expr) -> Result<Expr, MathError> {
    if !e.has_var() {
        return Ok(Expr::Mul(vec![e.clone(), Expr::Var]));
    }
    // Polynomials, however written: (x + 1)^3, x(x - 2), 3x^2 + 1.
    if let Some(p) = e.poly(64) {
        let mut c = vec![BigRational::zero()];
        for (k, q) in p.iter().enumerate() {
            c.push(q / BigRational::from_integer((k as i64 + 1).into()));
        }
        return Ok(from_poly(&c));
    }
    match e {
        Expr::Add(ts) => Ok(Expr::Add(
            ts.iter().map(integrate).collect::<Result<_, _>>()?,
        )),
        Expr::Mul(fs) => {
            // Constant factors out; exactly one factor with the variable left.
            let (var, constant): (Vec<&Expr>, Vec<&Expr>) = fs.iter().partition(|f| f.has_var());
            match var.as_slice() {
                [one] if !constant.is_empty() => {
                    let mut out: Vec<Expr> = constant.into_iter().cloned().collect();
                    out.push(integrate(one)?);
                    Ok(Expr::Mul(out))
                }
                _ => Err(not_in_table(e)),
            }
        }
        Expr::Pow(b, x) if !x.has_var() => {
            let (a, _) = linear(b).ok_or_else(|| not_in_table(e))?;
            let n = (**x).clone();
            if n.as_num().is_some_and(|q| *q == -BigRational::one()) {
                // ∫ 1/(ax + b) = ln|ax + b| / a
                let ln = Expr::call(Func::Ln, Expr::call(Func::Abs, (**b).clone()));
                return Ok(over(ln, &a));
            }
            let up = simplify(Expr::Add(vec![n, int(1)]))?;
            let raised = (**b).clone().pow(up.clone());
            Ok(Expr::Mul(vec![raised, up.pow(int(-1)), num(a.recip())]))
        }
        Expr::Pow(b, x) if !b.has_var() => {
            // ∫ c^(ax + b) = c^(ax + b) / (a·ln c)
            let (a, _) = linear(x).ok_or_else(|| not_in_table(e))?;
            let ln = match **b {
                Expr::E => int(1),
                _ => Expr::call(Func::Ln, (**b).clone()),
            };
            Ok(Expr::Mul(vec![e.clone(), ln.pow(int(-1)), num(a.recip())]))
        }
        Expr::Pow(b, x) => match (&**b, x.as_num()) {
            // ∫ 1/cos²(u) = tan(u)
            (Expr::Call(Func::Cos, u), Some(q)) if *q == BigRational::from_integer((-2).into()) => {
                let (a, _) = linear(u).ok_or_else(|| not_in_table(e))?;
                Ok(over(Expr::call(Func::Tan, (**u).clone()), &a))
            }
            _ => Err(not_in_table(e)),
        },
        Expr::Call(f, u) => {
            let (a, _) = linear(u).ok_or_else(|| not_in_table(e))?;
            let u = (**u).clone();
            let f = match f {
                Func::Sin => Expr::call(Func::Cos, u).neg(),
                Func::Cos => Expr::call(Func::Sin, u),
                Func::Exp => Expr::call(Func::Exp, u),
                // ∫ tan(u) = -ln|cos(u)|
                Func::Tan => {
                    Expr::call(Func::Ln, Expr::call(Func::Abs, Expr::call(Func::Cos, u))).neg()
                }
                // ∫ ln(u) = u·ln(u) - u
                Func::Ln => Expr::Add(vec![
                    Expr::Mul(vec![u.clone(), Expr::call(Func::Ln, u.clone())]),
                    u.neg(),
                ]),
                Func::Abs | Func::Atan => return Err(not_in_table(e)),
            };
            Ok(over(f, &a))
        }
        _ => Err(not_in_table(e)),
    }
}

fn not_in_table(e: &Expr) -> MathError {
    MathError::NotUnderstood(format!(
        "the integral of {} is not in my table (polynomials, powers, sin, cos, tan, exp, ln and \
         1/x of a linear ax + b, sums and constant multiples of them)",
        super::print::show(e)
    ))
}
