//! Finding the one item a name or id refers to: the dataset in a workspace, the Xero datasource
//! of a dataset, the organisation among the Xero connections. None and several are different
//! failures with different advice, so the search says which.

/// What a search for one item found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matches<T> {
    /// Exactly one item matched.
    One(T),
    /// Nothing matched.
    None,
    /// More than one item matched; all of them.
    Several(Vec<T>),
}

impl<T> Matches<T> {
    /// Sorts `found` (the items that matched) into one, none or several.
    pub fn of(found: impl IntoIterator<Item = T>) -> Self {
        let mut found: Vec<T> = found.into_iter().collect();
        match found.len() {
            0 => Matches::None,
            1 => found.pop().map_or(Matches::None, Matches::One),
            _ => Matches::Several(found),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Matches;

    #[test]
    fn one_none_or_several() {
        assert_eq!(
            Matches::of([1, 2, 3].into_iter().filter(|n| *n == 2)),
            Matches::One(2)
        );
        assert_eq!(
            Matches::of([1, 2, 3].into_iter().filter(|n| *n > 5)),
            Matches::None
        );
        assert_eq!(
            Matches::of([1, 2, 3].into_iter().filter(|n| *n > 1)),
            Matches::Several(vec![2, 3])
        );
    }
}
