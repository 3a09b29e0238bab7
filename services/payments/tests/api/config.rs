#[test]
fn config_needs_exactly_the_variables_listed_as_required() {
    testkit::ServiceEnv::of("payments")
        .assert_config_needs_exactly_these(payments::Config::from_env);
}
