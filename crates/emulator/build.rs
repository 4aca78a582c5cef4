// The demo fixtures are embedded with `include_dir!`, which cannot tell cargo what it read:
// rebuild when they change.
fn main() {
    println!("cargo:rerun-if-changed=../../fixtures/helpcenter");
}
