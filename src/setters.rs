//! Builder setters written once: each takes the builder by value, stores
//! its argument and hands the builder back.

/// Builder methods `pub fn name(mut self, args) -> Self`, each with its own
/// doc comment, that store one value: `field = value` assigns (a field path
/// such as `settings.workers` reaches into a nested struct), and
/// `field.push(value)` appends. `value` is an expression of the arguments.
///
/// ```ignore
/// setters! {
///     /// Worker threads (default 4).
///     workers(n: usize) => options.workers = n.max(2);
///     /// A label, after the defaults.
///     label(key: &str, value: &str) => labels.push((key.to_string(), value.to_string()));
/// }
/// ```
macro_rules! setters {
    () => {};
    (
        $(#[$doc:meta])*
        $name:ident($($arg:ident: $ty:ty),+) => $($field:ident).+ = $value:expr;
        $($rest:tt)*
    ) => {
        $(#[$doc])*
        pub fn $name(mut self, $($arg: $ty),+) -> Self {
            self.$($field).+ = $value;
            self
        }
        setters! { $($rest)* }
    };
    (
        $(#[$doc:meta])*
        $name:ident($($arg:ident: $ty:ty),+) => $field:ident.push($value:expr);
        $($rest:tt)*
    ) => {
        $(#[$doc])*
        pub fn $name(mut self, $($arg: $ty),+) -> Self {
            self.$field.push($value);
            self
        }
        setters! { $($rest)* }
    };
}
