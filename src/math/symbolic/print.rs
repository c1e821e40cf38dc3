//! Expressions as people write them: `3x^2 - 2x + 1`, `2x·cos(x^2)`,
//! `x^3/3`, `-sin(x)`, `e^(2x)`, `sqrt(x)`, `ln|x|`, `1/x^2`.

use num_rational::BigRational;
use num_traits::{One, Signed};

use super::expr::{Expr, Func};

thread_local! {
    /// The variable's name while printing (`x` unless asked otherwise).
    static VAR: std::cell::RefCell<String> = std::cell::RefCell::new("x".into());
}

/// Runs `f` with `var` as the variable's printed name.
pub(super) fn with_var<R>(var: &str, f: impl FnOnce() -> R) -> R {
    let before = VAR.with(|v| std::mem::replace(&mut *v.borrow_mut(), var.to_string()));
    let out = f();
    VAR.with(|v| *v.borrow_mut() = before);
    out
}

/// The expression as text.
pub(super) fn show(e: &Expr) -> String {
    let mut out = String::new();
    write(e, &mut out);
    out
}

fn rational(q: &BigRational) -> String {
    if q.is_integer() {
        q.numer().to_string()
    } else {
        format!("{}/{}", q.numer(), q.denom())
    }
}

fn write(e: &Expr, out: &mut String) {
    match e {
        Expr::Num(q) => out.push_str(&rational(q)),
        Expr::Var => VAR.with(|v| out.push_str(&v.borrow())),
        Expr::Pi => out.push('π'),
        Expr::E => out.push('e'),
        Expr::Add(terms) => {
            for (i, t) in terms.iter().enumerate() {
                let s = show(t);
                match (i, s.strip_prefix('-')) {
                    (0, _) => out.push_str(&s),
                    (_, Some(rest)) => {
                        out.push_str(" - ");
                        out.push_str(rest);
                    }
                    (_, None) => {
                        out.push_str(" + ");
                        out.push_str(&s);
                    }
                }
            }
        }
        Expr::Mul(fs) => write_product(fs, out),
        Expr::Pow(b, x) => write_power(b, x, out),
        Expr::Call(Func::Abs, a) => {
            out.push('|');
            write(a, out);
            out.push('|');
        }
        Expr::Call(Func::Ln, a) if matches!(**a, Expr::Call(Func::Abs, _)) => {
            out.push_str("ln");
            write(a, out);
        }
        Expr::Call(Func::Exp, a) => write_power(&Expr::E, a, out),
        Expr::Call(f, a) => {
            out.push_str(f.name());
            out.push('(');
            write(a, out);
            out.push(')');
        }
    }
}

/// A factor of a product: sums in parentheses.
fn factor(e: &Expr) -> String {
    match e {
        Expr::Add(_) => format!("({})", show(e)),
        _ => show(e),
    }
}

/// `b^x` with `x` positive, for denominators.
fn flipped(b: &Expr, x: &Expr) -> Expr {
    match x.as_num() {
        Some(q) if (-q.clone()).is_one() => b.clone(),
        Some(q) => b.clone().pow(Expr::Num(-q.clone())),
        None => b.clone().pow(x.clone().neg()),
    }
}

fn write_product(fs: &[Expr], out: &mut String) {
    let mut coef = BigRational::one();
    let mut top = Vec::new();
    let mut bottom = Vec::new();
    for f in fs {
        match f {
            Expr::Num(q) => coef *= q,
            Expr::Pow(b, x) if x.as_num().is_some_and(Signed::is_negative) => {
                bottom.push(factor(&flipped(b, x)))
            }
            f => top.push(factor(f)),
        }
    }
    if coef.is_negative() {
        out.push('-');
        coef = -coef;
    }
    let (n, d) = (coef.numer().clone(), coef.denom().clone());
    let mut num = String::new();
    if !n.is_one() || top.is_empty() {
        num.push_str(&n.to_string());
    }
    for (i, f) in top.iter().enumerate() {
        // `3x`, `3sin(x)`, `x·sin(x)`, but `2·3^x`.
        let digit_after_digit = !num.is_empty() && f.starts_with(|c: char| c.is_ascii_digit());
        if i > 0 || digit_after_digit {
            num.push('·');
        }
        num.push_str(f);
    }
    if !d.is_one() {
        bottom.insert(0, d.to_string());
    }
    out.push_str(&num);
    match bottom.len() {
        0 => {}
        1 => {
            out.push('/');
            out.push_str(&bottom[0]);
        }
        _ => {
            out.push_str("/(");
            out.push_str(&bottom.join("·"));
            out.push(')');
        }
    }
}

fn write_power(b: &Expr, x: &Expr, out: &mut String) {
    let half = BigRational::new(1.into(), 2.into());
    if x.as_num() == Some(&half) {
        out.push_str("sqrt(");
        write(b, out);
        out.push(')');
        return;
    }
    if let Some(q) = x.as_num().filter(|q| q.is_negative()) {
        out.push_str("1/");
        out.push_str(&factor(&flipped(b, &Expr::Num(q.clone()))));
        return;
    }
    let base = match b {
        Expr::Num(q) if q.is_integer() && !q.is_negative() => rational(q),
        Expr::Var | Expr::Pi | Expr::E | Expr::Call(..) => show(b),
        _ => format!("({})", show(b)),
    };
    let exp = match x {
        Expr::Num(q) if q.is_integer() && !q.is_negative() => rational(q),
        Expr::Var | Expr::Pi | Expr::E => show(x),
        _ => format!("({})", show(x)),
    };
    out.push_str(&base);
    out.push('^');
    out.push_str(&exp);
}
