#[test]
fn config_needs_exactly_the_variables_listed_as_required() {
    testkit::ServiceEnv::of("tickets").assert_config_needs_exactly_these(tickets::Config::from_env);
}
