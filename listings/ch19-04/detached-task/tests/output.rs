book_support::output_test!();
