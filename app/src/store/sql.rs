//! SQL built at run time, for queries whose filters vary: placeholders numbered as it grows.

use sqlx::any::AnyRow;

use super::Db;

/// A value to bind to a query built at run time.
enum Param {
    Text(String),
    Int(i64),
}

/// SQL with `$n` placeholders numbered as it grows, for queries whose filters vary.
#[derive(Default)]
pub(super) struct Sql {
    text: String,
    params: Vec<Param>,
}

impl Sql {
    pub(super) fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    fn bind(&mut self, param: Param) -> &mut Self {
        self.params.push(param);
        self.text.push_str(&format!("${}", self.params.len()));
        self
    }

    pub(super) fn text(&mut self, value: &str) -> &mut Self {
        self.bind(Param::Text(value.to_owned()))
    }

    pub(super) fn int(&mut self, value: i64) -> &mut Self {
        self.bind(Param::Int(value))
    }

    pub(super) fn query(&self) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments<'_>> {
        let mut query = sqlx::query(&self.text);
        for param in &self.params {
            query = match param {
                Param::Text(text) => query.bind(text.as_str()),
                Param::Int(n) => query.bind(*n),
            };
        }
        query
    }

    pub(super) async fn fetch_all(&self, db: &Db) -> Result<Vec<AnyRow>, sqlx::Error> {
        self.query().fetch_all(db.pool()).await
    }
}
