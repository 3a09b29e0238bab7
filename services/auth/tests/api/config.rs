use testkit::ServiceEnv;

#[test]
fn config_needs_exactly_the_variables_listed_as_required() {
    ServiceEnv::of("auth").assert_config_needs_exactly_these(auth::Config::from_env);
}
