//! placeholder
use super::*;
pub fn check_hook_case(_case: &Json, tally: &mut Tally) {
    *tally.cases.entry("hook-injector").or_default() += 1;
}
