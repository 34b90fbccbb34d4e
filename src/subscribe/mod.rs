pub mod mailto;
