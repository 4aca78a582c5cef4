//! Prints the language detected for each argument among en, de, ja, fr.
fn main() {
    use helpdex_lang::{Lang, detect_language_among};
    let allowed = [Lang::English, Lang::German, Lang::Japanese, Lang::French];
    for q in std::env::args().skip(1) {
        println!("{q:?} -> {:?}", detect_language_among(&q, &allowed));
    }
}
