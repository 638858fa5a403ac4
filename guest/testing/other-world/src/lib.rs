//! A valid component of an unrelated world: hotline must refuse it at the
//! type-check step.

wit_bindgen::generate!({
    inline: "
        package test:other@0.1.0;
        world other {
            export greet: func(name: string) -> string;
        }
    ",
});

struct Other;

impl Guest for Other {
    fn greet(name: String) -> String {
        format!("hello {name}")
    }
}

export!(Other);
