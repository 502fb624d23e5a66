//! The page size of a listing RPC. Every service that pages (the query
//! service's `Search` and `History`, the ingestor's `ListDeadLetters`)
//! reads `page_size` the same way: 0 asks for the default, more than the
//! maximum is refused with the same message, so the rule is written once.

/// A service's bounds on the page size of a listing RPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageBounds {
    /// The page size of a request that leaves `page_size` at 0.
    pub default: u32,
    /// The largest page size accepted.
    pub max: u32,
}

/// A `page_size` above the service's maximum (an `INVALID_ARGUMENT`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("page_size {requested} is above the maximum of {max}")]
pub struct PageSizeTooLarge {
    /// What the request asked for.
    pub requested: u32,
    /// The maximum.
    pub max: u32,
}

impl PageBounds {
    /// How many items the page of a request asking for `requested` holds.
    pub fn page_size(self, requested: u32) -> Result<usize, PageSizeTooLarge> {
        let size = match requested {
            0 => self.default,
            n if n <= self.max => n,
            requested => {
                return Err(PageSizeTooLarge {
                    requested,
                    max: self.max,
                });
            }
        };
        Ok(size as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_is_the_default_and_above_the_maximum_is_refused() {
        let bounds = PageBounds {
            default: 100,
            max: 1000,
        };
        assert_eq!(bounds.page_size(0), Ok(100));
        assert_eq!(bounds.page_size(1), Ok(1));
        assert_eq!(bounds.page_size(1000), Ok(1000));
        let refused = bounds.page_size(1001).expect_err("above the maximum");
        assert_eq!(
            refused.to_string(),
            "page_size 1001 is above the maximum of 1000"
        );
    }
}
