//! Polynomials with exact rational coefficients, bounded in degree, terms and
//! coefficient size while an equation is parsed.

use std::collections::{BTreeMap, BTreeSet};

use num_rational::BigRational;
use num_traits::{One, Zero};

use super::{too_large, MAX_COEF_BITS, MAX_DEGREE, MAX_TERMS};
use crate::math::parts::PartError;

/// A monomial: `(unknown index, exponent)` pairs sorted by index, exponents ≥ 1.
pub(super) type Mono = Vec<(usize, u32)>;

/// A polynomial with exact rational coefficients (no zero coefficients stored).
#[derive(Debug, Clone, PartialEq, Default)]
pub(super) struct Poly(pub(super) BTreeMap<Mono, BigRational>);

impl Poly {
    pub(super) fn constant(q: BigRational) -> Poly {
        let mut p = Poly::default();
        if !q.is_zero() {
            p.0.insert(Vec::new(), q);
        }
        p
    }

    pub(super) fn var(id: usize) -> Poly {
        let mut p = Poly::default();
        p.0.insert(vec![(id, 1)], BigRational::one());
        p
    }

    /// The value when the polynomial has no unknowns.
    pub(super) fn as_constant(&self) -> Option<BigRational> {
        match self.0.len() {
            0 => Some(BigRational::zero()),
            1 => self.0.get(&Vec::new()).cloned(),
            _ => None,
        }
    }

    pub(super) fn coef(&self, mono: &[(usize, u32)]) -> BigRational {
        self.0.get(mono).cloned().unwrap_or_else(BigRational::zero)
    }

    pub(super) fn degree(&self) -> u32 {
        self.0.keys().map(|m| mono_degree(m)).max().unwrap_or(0)
    }

    pub(super) fn unknowns(&self) -> BTreeSet<usize> {
        self.0.keys().flatten().map(|&(v, _)| v).collect()
    }

    pub(super) fn add_term(&mut self, mono: Mono, q: BigRational) -> Result<(), PartError> {
        let entry = self.0.entry(mono).or_insert_with(BigRational::zero);
        *entry += q;
        check_coef(entry)?;
        if entry.is_zero() {
            self.0.retain(|_, c| !c.is_zero());
        }
        if self.0.len() > MAX_TERMS {
            return Err(too_large(&format!("more than {MAX_TERMS} terms")));
        }
        Ok(())
    }

    pub(super) fn add(mut self, other: Poly, sign: i32) -> Result<Poly, PartError> {
        for (m, c) in other.0 {
            self.add_term(m, if sign < 0 { -c } else { c })?;
        }
        Ok(self)
    }

    pub(super) fn neg(self) -> Poly {
        Poly(self.0.into_iter().map(|(m, c)| (m, -c)).collect())
    }

    pub(super) fn mul(&self, other: &Poly) -> Result<Poly, PartError> {
        let mut out = Poly::default();
        for (ma, ca) in &self.0 {
            for (mb, cb) in &other.0 {
                let m = mono_mul(ma, mb);
                if mono_degree(&m) > MAX_DEGREE {
                    return Err(PartError::Unsupported(format!(
                        "the equation has a term of degree above {MAX_DEGREE}; only linear and \
                         quadratic equations are solved"
                    )));
                }
                out.add_term(m, ca * cb)?;
            }
        }
        Ok(out)
    }

    pub(super) fn pow(&self, e: u32) -> Result<Poly, PartError> {
        if let Some(c) = self.as_constant() {
            let bits = c.numer().bits() + c.denom().bits();
            if bits.saturating_mul(u64::from(e)) > MAX_COEF_BITS {
                return Err(too_large("a power is too large"));
            }
            return Ok(Poly::constant(num_traits::pow(c, e as usize)));
        }
        if e > MAX_DEGREE {
            return Err(PartError::Unsupported(format!(
                "the exponent {e} is above {MAX_DEGREE}; only linear and quadratic equations \
                 are solved"
            )));
        }
        let mut out = Poly::constant(BigRational::one());
        for _ in 0..e {
            out = out.mul(self)?;
        }
        Ok(out)
    }
}

fn check_coef(q: &BigRational) -> Result<(), PartError> {
    if q.numer().bits() + q.denom().bits() > MAX_COEF_BITS {
        return Err(too_large("a coefficient has too many digits"));
    }
    Ok(())
}

pub(super) fn mono_degree(m: &[(usize, u32)]) -> u32 {
    m.iter().map(|&(_, e)| e).sum()
}

fn mono_mul(a: &[(usize, u32)], b: &[(usize, u32)]) -> Mono {
    let mut map: BTreeMap<usize, u32> = a.iter().copied().collect();
    for &(v, e) in b {
        *map.entry(v).or_insert(0) += e;
    }
    map.into_iter().collect()
}
