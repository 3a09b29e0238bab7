#[test]
fn config_needs_exactly_the_variables_listed_as_required() {
    testkit::ServiceEnv::of("orders").assert_config_needs_exactly_these(orders::Config::from_env);
}
