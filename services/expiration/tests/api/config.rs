#[test]
fn config_needs_exactly_the_variables_listed_as_required() {
    testkit::ServiceEnv::of("expiration")
        .assert_config_needs_exactly_these(expiration::Config::from_env);
}
