#[test]
fn config_needs_exactly_the_variables_listed_as_required() {
    testkit::ServiceEnv::of("notifications")
        .assert_config_needs_exactly_these(notifications::Config::from_env);
}
