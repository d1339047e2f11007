use super::*;

fn err(text: &str) -> String {
    load("test.toml", text, 1, Overrides::default())
        .unwrap_err()
        .to_string()
}

#[test]
fn every_built_in_scenario_loads() {
    for (name, _) in BUILT_IN {
        let l = built_in(name, 1, Overrides::default()).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            !l.scenario.actors.is_empty() && !l.description.is_empty(),
            "{name}"
        );
        assert!(!l.scripted.is_empty(), "{name} sets up no conflict");
    }
    let e = built_in("nope", 1, Overrides::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("nope") && e.contains("t-junction"), "{e}");
}

#[test]
fn mistakes_in_a_file_are_named() {
    let actor = "[[actor]]\nid = \"a\"\nclass = \"car\"\npath = [[0.0, 0.0], [10.0, 0.0]]\nspeed = [[0.0, 5.0]]\n";
    let head = "name = \"x\"\nduration_s = 10.0\n";
    assert!(err(&format!("{head}colour = 1\n{actor}")).contains("colour"));
    assert!(err(&format!("{head}{}", actor.replace("car", "tank"))).contains("tank"));
    assert!(err(&format!(
        "{head}{}",
        actor.replace("[[0.0, 5.0]]", "[[1.0, 5.0], [0.5, 2.0]]")
    ))
    .contains("increasing time"));
    let scripted = "[[conflict]]\npattern = \"scripted\"\nbetween = [\"a\", \"ghost\"]\n";
    assert!(err(&format!("{head}{scripted}{actor}")).contains("ghost"));
    let pattern = "[[conflict]]\npattern = \"left-turn\"\nat_s = 5.0\n";
    assert!(err(&format!("{head}{pattern}{actor}")).contains("need a layout"));
    let typo = "layout = \"t-junction\"\n[[conflict]]\npattern = \"left-turn\"\nat = 5.0\n";
    assert!(
        err(&format!("{head}{typo}")).contains("conflict 0"),
        "{}",
        err(&format!("{head}{typo}"))
    );
    assert!(err("name = \"x\"\nduration_s = -1.0\n").contains("duration_s"));
}

#[test]
fn overrides_scale_the_random_traffic_and_its_connected_share() {
    let count = |o: Overrides| {
        let s = built_in("t-junction", 3, o).unwrap().scenario;
        (s.n_vehicles(), s.n_connected())
    };
    let (base, _) = count(Overrides::default());
    let (more, _) = count(Overrides {
        vehicles: Some(120),
        ..Default::default()
    });
    assert!(
        more > base,
        "{more} vehicles with 120 entering, {base} by default"
    );
    let (_, none) = count(Overrides {
        connected_share: Some(0.0),
        ..Default::default()
    });
    // Only the scripted conflicts' own vehicles keep their agents.
    assert!(none <= 4, "{none} connected");
}
