//! Version ranges as the definitions write them: `"none"`, `"3"`, `"1-4"` and `"2+"`.

use std::fmt;

/// An inclusive range of versions; empty when `lowest > highest`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Versions {
    /// First version in the range.
    pub lowest: i16,
    /// Last version in the range (`i16::MAX` for open-ended ranges).
    pub highest: i16,
}

impl Versions {
    /// The empty range (`"none"`).
    pub const NONE: Versions = Versions {
        lowest: 0,
        highest: -1,
    };
    /// Every version (`"0+"`).
    pub const ALL: Versions = Versions {
        lowest: 0,
        highest: i16::MAX,
    };

    /// Parses `"none"`, `"N"`, `"N-M"` or `"N+"`.
    pub fn parse(text: &str) -> Result<Versions, String> {
        let text = text.trim();
        let number = |s: &str| {
            s.trim()
                .parse::<i16>()
                .ok()
                .filter(|v| *v >= 0)
                .ok_or_else(|| format!("invalid version range {text:?}"))
        };
        if text == "none" {
            return Ok(Versions::NONE);
        }
        if let Some(low) = text.strip_suffix('+') {
            return Ok(Versions {
                lowest: number(low)?,
                highest: i16::MAX,
            });
        }
        if let Some((low, high)) = text.split_once('-') {
            let range = Versions {
                lowest: number(low)?,
                highest: number(high)?,
            };
            if range.is_empty() {
                return Err(format!(
                    "invalid version range {text:?}: lowest above highest"
                ));
            }
            return Ok(range);
        }
        let single = number(text)?;
        Ok(Versions {
            lowest: single,
            highest: single,
        })
    }

    /// True when no version is in the range.
    pub fn is_empty(self) -> bool {
        self.lowest > self.highest
    }

    /// True when `version` is in the range.
    pub fn contains(self, version: i16) -> bool {
        self.lowest <= version && version <= self.highest
    }

    /// True when every version of `other` is in this range.
    pub fn contains_all(self, other: Versions) -> bool {
        other.is_empty() || (self.lowest <= other.lowest && other.highest <= self.highest)
    }

    /// The versions in both ranges.
    pub fn intersect(self, other: Versions) -> Versions {
        let range = Versions {
            lowest: self.lowest.max(other.lowest),
            highest: self.highest.min(other.highest),
        };
        if range.is_empty() {
            Versions::NONE
        } else {
            range
        }
    }

    /// The versions of `self` that are not in `other`, when that is one range.
    ///
    /// Tagged versions are open-ended, so removing them from a field's versions always
    /// leaves a prefix; `None` is returned for a hole in the middle.
    pub fn subtract(self, other: Versions) -> Option<Versions> {
        let overlap = self.intersect(other);
        if overlap.is_empty() {
            Some(self)
        } else if overlap == self {
            Some(Versions::NONE)
        } else if overlap.lowest == self.lowest {
            Some(Versions {
                lowest: overlap.highest + 1,
                highest: self.highest,
            })
        } else if overlap.highest == self.highest {
            Some(Versions {
                lowest: self.lowest,
                highest: overlap.lowest - 1,
            })
        } else {
            None
        }
    }

    /// True for `"N+"` ranges.
    pub fn is_open_ended(self) -> bool {
        !self.is_empty() && self.highest == i16::MAX
    }
}

impl fmt::Display for Versions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            f.write_str("none")
        } else if self.highest == i16::MAX {
            write!(f, "{}+", self.lowest)
        } else if self.lowest == self.highest {
            write!(f, "{}", self.lowest)
        } else {
            write!(f, "{}-{}", self.lowest, self.highest)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Versions;

    fn v(text: &str) -> Versions {
        Versions::parse(text).unwrap()
    }

    #[test]
    fn parses_every_form() {
        assert!(v("none").is_empty());
        assert_eq!(
            v("3"),
            Versions {
                lowest: 3,
                highest: 3
            }
        );
        assert_eq!(
            v("1-4"),
            Versions {
                lowest: 1,
                highest: 4
            }
        );
        assert_eq!(
            v("2+"),
            Versions {
                lowest: 2,
                highest: i16::MAX
            }
        );
        for bad in ["", "x", "4-1", "-1", "1-", "+"] {
            assert!(Versions::parse(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn displays_as_written() {
        for text in ["none", "3", "1-4", "2+"] {
            assert_eq!(v(text).to_string(), text);
        }
    }

    #[test]
    fn range_algebra() {
        assert_eq!(v("0+").intersect(v("3-5")), v("3-5"));
        assert!(v("0-2").intersect(v("3+")).is_empty());
        assert!(v("0+").contains_all(v("1-9")));
        assert!(!v("1-9").contains_all(v("0+")));
        assert!(v("1-9").contains_all(Versions::NONE));
        assert_eq!(v("0+").subtract(v("3+")), Some(v("0-2")));
        assert_eq!(v("3+").subtract(v("3+")), Some(Versions::NONE));
        assert_eq!(v("0-4").subtract(v("6+")), Some(v("0-4")));
        assert_eq!(v("0-9").subtract(v("3-4")), None);
        assert!(v("5+").is_open_ended() && !v("5").is_open_ended());
    }
}
