//! Prints the query terms and pairs of each argument in a family (first argument: family code).
fn main() {
    use helpdex_lang::Family;
    use helpdex_lang::schema::{question_pairs, question_terms};
    let mut args = std::env::args().skip(1);
    let family = Family::from_code(&args.next().unwrap_or_default()).unwrap_or(Family::Plain);
    for q in args {
        println!(
            "{q:?} -> {:?} {:?}",
            question_terms(family, &q),
            question_pairs(family, &q)
        );
    }
}
