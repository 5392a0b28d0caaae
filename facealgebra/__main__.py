from facealgebra.cli import main

main()
