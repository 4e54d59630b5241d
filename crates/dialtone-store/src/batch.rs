//! Many rows in few statements. What is written behind (call records,
//! bindings) goes to the database in batches, and every statement is a
//! hand-off to sqlx's worker thread and back, so a batch is written as
//! multi-row `INSERT … VALUES (…), (…) …` statements: [`MAX_ROWS`] rows
//! each, then one with the rest. A batch of up to [`MAX_ROWS`] rows is one
//! statement, which needs no transaction around it: no BEGIN and COMMIT,
//! each a hand-off of its own. Each size is a text of its own, prepared
//! once on the connection its lane keeps ([`crate::writer`]), so at most
//! [`MAX_ROWS`] per table, inside sqlx's cache of 100 per connection.
//!
//! SQLite is given anonymous `?` markers in them, not `$n`: `$n` is a
//! named parameter there, and sqlx looks each one's name up in a list as
//! long as the statement's parameters (1,280 for 64 call records), which
//! made binding a batch quadratic in its size.

use std::sync::OnceLock;

use sqlx::AnyConnection;

use crate::StoreError;

pub(crate) type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// Rows per statement at most: 64 call records are 1,280 parameters,
/// well inside SQLite's 32,766 and PostgreSQL's 65,535.
pub(crate) const MAX_ROWS: usize = 64;
const TEXTS: usize = MAX_ROWS;

/// How a statement's parameters are marked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Marks {
    /// `$1, $2, …`: PostgreSQL's.
    Numbered,
    /// `?, ?, …` in binding order: SQLite's cheapest.
    Anonymous,
}

impl Marks {
    fn of(conn: &AnyConnection) -> Marks {
        if conn.backend_name().eq_ignore_ascii_case("sqlite") {
            Marks::Anonymous
        } else {
            Marks::Numbered
        }
    }
}

/// A one-row statement (`… VALUES ($1, …, $k) …`, no other parameter
/// outside that group) and its multi-row forms.
pub(crate) struct MultiRow {
    single: fn() -> &'static str,
    numbered: [OnceLock<String>; TEXTS],
    anonymous: [OnceLock<String>; TEXTS],
}

impl MultiRow {
    pub(crate) const fn new(single: fn() -> &'static str) -> Self {
        MultiRow {
            single,
            numbered: [const { OnceLock::new() }; TEXTS],
            anonymous: [const { OnceLock::new() }; TEXTS],
        }
    }

    /// The statement for `rows` rows, 1 to [`MAX_ROWS`].
    pub(crate) fn sql(&self, rows: usize, marks: Marks) -> &str {
        let level = rows.clamp(1, MAX_ROWS) - 1;
        let texts = match marks {
            Marks::Numbered => &self.numbered,
            Marks::Anonymous => &self.anonymous,
        };
        texts[level].get_or_init(|| widen((self.single)(), level + 1, marks))
    }

    /// Runs `rows` on `conn` in as few statements as [`chunks`] allows,
    /// each row's parameters bound by `bind` in the single form's order.
    pub(crate) async fn execute<T>(
        &self,
        conn: &mut AnyConnection,
        rows: &[T],
        bind: for<'q> fn(AnyQuery<'q>, &'q T) -> AnyQuery<'q>,
    ) -> Result<(), StoreError> {
        let marks = Marks::of(conn);
        for chunk in chunks(rows) {
            let query = chunk
                .iter()
                .fold(sqlx::query(self.sql(chunk.len(), marks)), bind);
            query.execute(&mut *conn).await?;
        }
        Ok(())
    }
}

/// How many statements [`MultiRow::execute`] runs for `rows` rows.
pub(crate) fn statements(rows: usize) -> usize {
    rows.div_ceil(MAX_ROWS)
}

/// `rows` cut into the statements [`MultiRow::execute`] runs: [`MAX_ROWS`]
/// at a time, then the rest.
fn chunks<T>(rows: &[T]) -> impl Iterator<Item = &[T]> {
    rows.chunks(MAX_ROWS)
}

/// `single`'s `VALUES (…)` group repeated for `rows` rows, numbered on or
/// all `?`.
fn widen(single: &str, rows: usize, marks: Marks) -> String {
    let start = single.find("VALUES (").map_or(0, |i| i + "VALUES ".len());
    let end = single[start..]
        .find(')')
        .map_or(single.len(), |i| start + i + 1);
    let columns = single[start..end].matches('$').count();
    let values: Vec<String> = (0..rows)
        .map(|r| {
            let marks: Vec<String> = (1..=columns)
                .map(|c| match marks {
                    Marks::Numbered => format!("${}", r * columns + c),
                    Marks::Anonymous => "?".to_string(),
                })
                .collect();
            format!("({})", marks.join(", "))
        })
        .collect();
    format!(
        "{}{}{}",
        &single[..start],
        values.join(", "),
        &single[end..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn single() -> &'static str {
        "INSERT INTO t (a, b) VALUES ($1, $2) ON CONFLICT (a) DO UPDATE SET b = excluded.b"
    }

    #[test]
    fn a_batch_is_cut_into_full_statements_and_the_rest() {
        let rows: Vec<u32> = (0..203).collect();
        let sizes: Vec<usize> = chunks(&rows).map(<[u32]>::len).collect();
        assert_eq!(sizes, [64, 64, 64, 11]);
        assert_eq!(chunks(&rows[..64]).count(), 1);
        for n in [0, 1, 64, 65, 203] {
            assert_eq!(statements(n), chunks(&rows[..n]).count());
        }
        let all: Vec<u32> = chunks(&rows).flatten().copied().collect();
        assert_eq!(all, rows);
        assert_eq!(chunks::<u32>(&[]).count(), 0);
    }

    #[test]
    fn the_values_group_is_repeated_and_numbered_on() {
        static S: MultiRow = MultiRow::new(single);
        assert_eq!(S.sql(1, Marks::Numbered), single());
        assert_eq!(
            S.sql(4, Marks::Numbered),
            "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4), ($5, $6), ($7, $8) \
             ON CONFLICT (a) DO UPDATE SET b = excluded.b"
        );
        assert_eq!(S.sql(3, Marks::Numbered).matches("($").count(), 3);
        assert_eq!(
            S.sql(2, Marks::Anonymous),
            "INSERT INTO t (a, b) VALUES (?, ?), (?, ?) \
             ON CONFLICT (a) DO UPDATE SET b = excluded.b"
        );
    }
}
